"""Flower processes for tests and benchmarks: private ports and FLWR_HOME, tagged processes,
stops that leave nothing.

Every process a Flower test or benchmark starts (SuperLink, SuperNodes, SuperExec,
ServerApp, ClientApps, workers, Ray) inherits a marker in its environment; teardown stops
exactly the processes that carry this run's marker, by pid, and checks that none
survived. Used by tests/federation/test_flower_app.py and tests/privacy (`flwr run`
simulations), tests/deployment/ (SuperLink + SuperNodes on loopback), and
benchmarks/simulation_backends.py, benchmarks/deployment_overhead.py and
benchmarks/chaos.py, which put this folder on sys.path (the one copy of this code; pytest
is installed with the `test` extra that `make setup` installs).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKER = "FEDLINGUA_PROCESS_TAG"

needs_flwr_cli = pytest.mark.skipif(
    not (BIN / "flwr").exists() or not Path("/proc").is_dir(),
    reason="needs the flwr CLI next to this Python and Linux /proc (to stop what the run starts)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_range(count: int) -> int:
    """A base port such that base .. base+count-1 are all free on 127.0.0.1."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        if all(_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def tagged_pids(tag: str) -> list[int]:
    """Pids of live processes whose environment carries `MARKER=tag` (this user's only)."""
    needle = f"{MARKER}={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return pids


def cmdline(pid: int) -> str:
    """The command line of process `pid` ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_tagged(tag: str) -> None:
    """SIGTERM, then SIGKILL, every process carrying the marker; waits until they are gone."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        pids = tagged_pids(tag)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = tagged_pids(tag)
        if not pids:
            return


def flower_env(home: Path, tag: str) -> dict[str, str]:
    """Environment for Flower processes: private FLWR_HOME, offline, one thread, tagged."""
    return os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # flwr starts flower-*
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "FEDLINGUA_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "FEDLINGUA_CONFIG_DIRS": tempfile.gettempdir(),  # where the tests write run configs
        MARKER: tag,
    }


@contextmanager
def tagged_flower_env(root: Path) -> Iterator[dict[str, str]]:
    """`flower_env` with a fresh tag and a private FLWR_HOME (root/flwr-home); afterwards
    stops every process that carries the tag and checks none survived."""
    home = root / "flwr-home"
    home.mkdir(parents=True)
    tag = uuid.uuid4().hex
    try:
        yield flower_env(home, tag)
    finally:
        stop_tagged(tag)
        assert not tagged_pids(tag), "processes started by the Flower run survived teardown"


@contextmanager
def local_flower_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for `flwr run` on the `:local:` connection: private FLWR_HOME and ports,
    offline, every process tagged; stops them all afterwards and checks none survived."""
    with tagged_flower_env(tmp_path) as env:
        (Path(env["FLWR_HOME"]) / "config.toml").write_text(
            '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
        )
        yield env | {
            "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
            "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
        }


def flwr_run_command(config_path: Path, supernodes: int, federation_config: str = "") -> list[str]:
    """`flwr run . --stream` of the repository's Flower App on the simulation runtime, with a
    fedlingua config file, one CPU per ClientApp and any further federation settings."""
    return [
        str(BIN / "flwr"),
        "run",
        str(REPO),
        "--stream",
        "--run-config",
        f"fedlingua-config='{config_path}'",
        "--federation-config",
        f"num-supernodes={supernodes} client-resources-num-cpus=1 {federation_config}".strip(),
    ]


def flwr_run_simulation(
    env: dict[str, str], config_path: Path, supernodes: int, timeout: float
) -> subprocess.CompletedProcess:
    """Run `flwr_run_command` to its end (use inside `local_flower_env`)."""
    return subprocess.run(
        flwr_run_command(config_path, supernodes),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def same_model_as_in_process(cfg, run_dir: Path, name: str) -> dict:
    """Run `cfg` in-process as run `name` (same seed, uninterrupted) and check that the Flower
    run in `run_dir` ended with the same global model and accuracies; returns the local run."""
    import json

    import torch

    from fedlingua.engine import load_final_states, run

    cfg.name = name
    local = run(cfg, log=lambda line: None)
    flower = load_final_states(run_dir)["global"]
    expected = load_final_states(local["run_dir"])["global"]
    assert flower.keys() == expected.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(flower[key], tensor, rtol=1e-4, atol=1e-6, msg=key)
    results = json.loads((run_dir / "results.json").read_text())
    for lang, scores in local["languages"].items():
        assert results["languages"][lang]["accuracy"] == pytest.approx(scores["accuracy"])
    return local
