"""A fedlingua federation as a Flower deployment on loopback: secure, and surviving faults.

`scripts/federation.sh` starts a `flower-superlink` and one `flower-supernode` per
client (with TLS and SuperNode authentication, each node with a long-running
ClientApp worker), `flwr run` trains the tiny model, and each test checks the run
directory the ServerApp wrote. The faults are real: processes are SIGKILLed, a node
sends wrong-shaped or pickled tensors (its `fedlingua-fault` node config), a quorum
is not met.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch
from federation_helpers import needs_deployment
from flower_processes import BIN, cmdline, free_port, same_model_as_in_process, tagged_pids

from fedlingua.engine import load_final_states
from fedlingua.experiment import build

pytestmark = needs_deployment


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _global(record: dict) -> dict:
    return record["federations"]["global"]


def _wait_for(predicate, timeout: float, what: str, dep=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{dep.logs() if dep else ''}")
        time.sleep(0.2)


def _intruder_key(path: Path) -> Path:
    """An EC P-384 key pair the SuperLink has never seen."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()))
    path.chmod(0o600)
    return path


def _outsider(dep, *args: str) -> tuple[int, str]:
    """Start a SuperNode that is not part of the federation; its exit status and log."""
    port = free_port()
    home = dep.root / f"outsider-{port}"
    home.mkdir()
    log = home / "supernode.log"
    with log.open("w") as out:  # a file, not a pipe: nothing may hold the pipe open
        proc = subprocess.run(
            [str(BIN / "flower-supernode"), "--superlink", f"127.0.0.1:{dep.port}"]
            + ["--node-config", "partition-id=0 num-partitions=3", "--port", str(port)]
            + ["--isolation", "process", "--max-retries", "1", "--max-wait-time", "30", *args],
            env=dep.env | {"FLWR_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=180,
        )
    return proc.returncode, log.read_text()


# ---- the federation CI runs: 3 SuperNodes, 2 rounds, TLS and node authentication -----------
def test_secure_federation_of_three_supernodes_trains_two_rounds(deployment, run_config):
    path, cfg = run_config("secure", federation__rounds=2)
    t0 = time.perf_counter()
    deployment.up(3, path)
    t_up = time.perf_counter() - t0

    # secure by default: TLS on every connection, SuperNode authentication, nothing insecure
    procs = {pid: cmdline(pid) for pid in tagged_pids(deployment.tag)}
    link = [c for c in procs.values() if "flower-superlink" in c]
    nodes = [c for c in procs.values() if "flower-supernode" in c]
    assert len(link) == 1 and len(nodes) == 3, procs
    assert "--enable-supernode-auth" in link[0] and "--ssl-certfile" in link[0]
    assert all("--auth-supernode-private-key" in c and "--root-certificates" in c for c in nodes)
    assert all("--ssl-certfile" in c for c in nodes)  # each node's local Runtime API too
    assert not [c for c in procs.values() if "--insecure" in c], procs

    # a node whose public key the SuperLink does not know is refused
    tls = deployment.dir / "tls"
    intruder = _intruder_key(deployment.root / "intruder")
    code, log = _outsider(
        deployment,
        "--root-certificates",
        str(tls / "ca.crt"),
        "--auth-supernode-private-key",
        str(intruder),
    )
    assert code != 0 and "Failed to activate SuperNode" in log, log
    # ... and so is one that will not speak TLS
    code, log = _outsider(deployment, "--insecure")
    assert code != 0 and "Failed to initialize the connection to the SuperLink" in log, log
    assert deployment.online() == 3

    t1 = time.perf_counter()
    proc = deployment.run()
    t_run = time.perf_counter() - t1
    assert proc.returncode == 0, proc.stdout + proc.stderr + deployment.logs()
    assert "finished:completed" in proc.stdout

    run_dir = Path(cfg.output_dir) / "secure"
    rounds = _metrics(run_dir)
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        fed = _global(r)
        assert sorted(fed["succeeded"]) == ["fr", "lg", "sw"] and not fed["failed"], fed
        assert fed["updated"] and fed["skipped"] is None
        assert min(fed["bytes_up"].values()) > 0 and min(fed["bytes_down"].values()) > 0
        assert set(r["test"]) == {"fr", "lg", "sw"}
    same_model_as_in_process(cfg, run_dir, "secure-in-process")

    status = deployment.sh("status")
    assert status.stdout.count("running") == 4, status.stdout
    deployment.sh("down")
    assert not list((deployment.dir / "pids").glob("*.pid"))
    assert not tagged_pids(deployment.tag)
    assert deployment.sh("status", check=False).returncode != 0
    print(f"deployment: up {t_up:.1f} s, 2 rounds x 3 SuperNodes {t_run:.1f} s (TLS + node auth)")


# ---- a client that sends malformed tensors; a quorum that is not met -------------------------
def test_bad_tensors_are_rejected_and_rounds_below_quorum_are_skipped(deployment, run_config):
    path, cfg = run_config("bad-clients", federation__rounds=2)
    deployment.up(3, path, "--fault", "1=wrong-shape", "--fault", "2=pickled")

    proc = deployment.run()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log + deployment.logs()
    for r in _metrics(Path(cfg.output_dir) / "bad-clients"):
        fed = _global(r)
        assert fed["succeeded"] == ["fr"] and fed["updated"], fed
        assert fed["failed"]["sw"].startswith("rejected reply: ") and "shape" in fed["failed"]["sw"]
        assert "allow_pickle" in fed["failed"]["lg"], fed  # refused undecoded
    assert "rejected reply from sw" in log and "rejected reply from lg" in log
    assert "2 client(s) failed" in log
    for node in (1, 2):
        assert "FAULT INJECTION" in (deployment.dir / "logs" / f"node-{node}.log").read_text()

    # the same federation with a quorum of 2: only one valid reply a round, so no round
    # aggregates; the run completes with the initial model
    proc = deployment.run("--overrides", "name='quorum'; federation.min_clients=2")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log + deployment.logs()
    run_dir = Path(cfg.output_dir) / "quorum"
    for r in _metrics(run_dir):
        fed = _global(r)
        assert not fed["updated"], fed
        assert fed["skipped"] == "quorum not met: 1 valid reply, federation.min_clients=2"
    assert "round skipped (quorum not met" in log
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["skipped_rounds"]) == {"1", "2"}
    initial = build(cfg).bench.get_state()
    final = load_final_states(run_dir)["global"]
    for key, tensor in initial.items():
        torch.testing.assert_close(final[key], tensor, rtol=0, atol=0, msg=key)


# ---- a SuperNode killed mid-run --------------------------------------------------------------
def test_a_killed_supernode_is_left_out_after_the_timeout_and_rejoins(deployment, run_config):
    timeout = 15.0
    path, cfg = run_config(
        "node-crash",
        federation__rounds=12,
        federation__round_timeout=timeout,
        federation__min_clients=2,
    )
    deployment.up(3, path)
    run_dir = Path(cfg.output_dir) / "node-crash"
    background = deployment.run_in_background()
    try:
        metrics = run_dir / "metrics.jsonl"
        _wait_for(metrics.exists, 300, "round 1", deployment)
        killed_after = len(_metrics(run_dir))
        deployment.sh("kill", "node-2")  # SIGKILL: SuperNode and worker die, mid-round
        deployment.sh("restart", "node-2")  # back as soon as the SuperLink lets its key in
        out, _ = background.communicate(timeout=600)
    finally:
        if background.poll() is None:
            background.kill()
    assert background.returncode == 0, out + deployment.logs()

    rounds = _metrics(run_dir)
    assert [r["round"] for r in rounds] == list(range(1, 13))
    # the round node-2 died in (the one after the kill, or the next if its reply was out)
    lost = next(r for r in rounds[killed_after:] if "lg" in _global(r)["failed"])
    fed = _global(lost)
    assert fed["failed"] == {"lg": "no reply before the timeout"}, fed
    assert sorted(fed["succeeded"]) == ["fr", "sw"] and fed["updated"]
    assert timeout <= lost["time"]["train_s"] < timeout + 30
    # it rejoined later rounds, the last one included
    back = [
        r["round"] for r in rounds if r["round"] > lost["round"] and "lg" in _global(r)["succeeded"]
    ]
    assert back and back[-1] == 12, [
        (_global(r)["succeeded"], _global(r)["failed"]) for r in rounds
    ]
    assert all(_global(r)["updated"] for r in rounds)  # the quorum of 2 held throughout


# ---- the server killed mid-run ---------------------------------------------------------------
def test_a_killed_server_resumes_from_its_last_checkpoint_to_the_same_model(deployment, run_config):
    path, cfg = run_config(
        "server-crash", languages=("fr", "sw"), federation__rounds=3, federation__strategy="fedadam"
    )
    deployment.up(2, path)
    run_dir = Path(cfg.output_dir) / "server-crash"
    latest = run_dir / "checkpoint" / "latest.json"
    background = deployment.run_in_background()
    try:
        _wait_for(latest.exists, 300, "the first checkpoint", deployment)
        deployment.sh("kill", "superlink")  # SIGKILL: SuperLink, its SuperExec, the ServerApp
        out, _ = background.communicate(timeout=120)
    finally:
        if background.poll() is None:
            background.kill()
    assert background.returncode != 0, out
    done = json.loads(latest.read_text())["round"]
    assert 1 <= done < 3 and not (run_dir / "results.json").exists()

    deployment.sh("restart", "superlink")  # same state database: registrations survive
    deployment.wait_online(2)
    proc = deployment.run("--resume", str(run_dir))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log + deployment.logs()
    assert f"resuming {run_dir} after round {done}" in log

    rounds = _metrics(run_dir)
    assert [r["round"] for r in rounds] == [1, 2, 3]
    local = same_model_as_in_process(cfg, run_dir, "uninterrupted")
    uninterrupted = _metrics(Path(local["run_dir"]))
    for resumed, expected in zip(rounds, uninterrupted, strict=True):
        assert _global(resumed)["train_loss"] == pytest.approx(_global(expected)["train_loss"])
