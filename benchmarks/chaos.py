"""Chaos soak: a real loopback federation under a seeded schedule of faults, checked afterwards.

`scripts/federation.sh` starts Flower's own SuperLink and N SuperNodes (TLS and SuperNode
authentication on, one long-running ClientApp worker per node) and `flwr run` trains the
tiny model for R rounds with `federation.round_timeout` set. While it runs, a seeded
schedule injects faults, each when its trigger round has been recorded:

* node-kill     SIGKILL a SuperNode (and its worker), then `restart` it at once
* server-kill   SIGKILL the SuperLink (its SuperExec and the ServerApp die with it),
                `restart` it and `run --resume` the run directory
* stall         `restart node-I --fault I=stall:S` with S > round_timeout; cleared (a plain
                restart) once a round recorded the node's reply as missing
* malformed     `restart node-I --fault I=KIND`, KIND one of nan, wrong-shape, drop-tensor,
                pickled; cleared once a round recorded the rejection
* huge          `--fault I=huge:MB`: a reply MB MiB larger than the model; refused by its
                size before decoding; cleared likewise
* disk-full     the run's checkpoint folder is a small tmpfs mounted before the run
                (never the real disk); the fault fills it, the next checkpoint write fails
                with ENOSPC and the ServerApp stops; the benchmark checks the error is
                named in the run's log and the last checkpoint still loads, frees the space
                and resumes. Without permission to mount it is reported as not injected.

Recovery time, per fault: from the moment of injection (the kill, or the restart that
set the fault, or the filling of the disk) to the first round recorded afterwards that
aggregated with that node's update in it (node faults; a round after the one that
showed the fault), or to the resumed server's first aggregated round (server-kill,
disk-full).

Afterwards the benchmark checks, and exits non-zero otherwise:
(a) every round 1..R is in metrics.jsonl once, aggregated or skipped with a reason, every
    sampled client succeeded or failed with a reason, every injected fault is visible
    there with its reason, and the run finished. The final model is compared with an
    in-process run of the same config and seed in which each round exactly the clients the
    soak aggregated take part (the others drop out): the largest relative L2 distance of
    a tensor is reported, and with server faults only (`--kinds server-kill,disk-full`),
    where that replay is the uninterrupted fault-free run, it must stay under REPLAY_RTOL;
(b) every checkpoint and tensor file in the run directory loads (checked at each server
    fault too), and no temporary file of an interrupted write is left;
(c) after `federation.sh down` no process of the federation is left: no live pid in its
    pid files, none whose command line names its folder, none carrying its marker.

Usage:
  .venv/bin/python benchmarks/chaos.py --nodes 3,8 --rounds 30 [--seed 0]
  .venv/bin/python benchmarks/chaos.py --short --results DIR   (3 nodes, 6 rounds, 3 faults;
                                                                 what tests/deployment runs)
Writes benchmarks/results/chaos.md and chaos.json (or DIR/chaos.json with --results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import RESULTS, write_results

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / p) for p in ("", "deployment")]
from federation_helpers import Deployment  # noqa: E402
from flower_processes import MARKER, cmdline, tagged_flower_env, tagged_pids  # noqa: E402

LANGUAGES = ("fr", "sw", "lg", "ha", "am", "sn", "rn", "yo")  # CLDR: one client each
MALFORMED = ("nan", "wrong-shape", "drop-tensor", "pickled")
REASONS = {  # what metrics.jsonl says of a node's reply under each fault
    "nan": "NaN",
    "wrong-shape": "shape",
    "drop-tensor": "names differ",
    "pickled": "allow_pickle",
    "huge": "refused before decoding",
    "stall": "no reply before the timeout",
    "node-kill": "",  # any failure: no reply, or the SuperLink's error for a lost node
}
NODE_KINDS = ("node-kill", "stall", "malformed", "huge")
SERVER_KINDS = ("server-kill", "disk-full")
SOAK_COUNTS = {"node-kill": 2, "server-kill": 2, "stall": 1, "malformed": 2, "huge": 1}
SOAK_COUNTS["disk-full"] = 1
ROUND_TIMEOUT_S = 15.0
STALL_S = 40.0
HUGE_MB = 64
TMPFS_BYTES = 4 * 2**20
REPLAY_RTOL = 1e-5  # per tensor, relative L2 distance: float rounding, nothing more


class ChaosFailure(AssertionError):
    """A property the soak checks did not hold."""


@dataclass
class Fault:
    trigger: int  # injected once this round is recorded
    kind: str  # one of NODE_KINDS or SERVER_KINDS
    node: int | None = None
    spec: str = ""  # the fedlingua-fault spec (stall, malformed, huge)
    injected_s: float | None = None  # seconds since the soak started
    observed_round: int | None = None  # the round whose record shows the fault
    recovered_s: float | None = None
    recovered_round: int | None = None
    note: str = ""
    _obs: int = field(default=-1, repr=False)  # index of the observation showing it
    _log_mark: int = field(default=0, repr=False)

    @property
    def recovery_s(self) -> float | None:
        if self.recovered_s is None or self.injected_s is None:
            return None
        return self.recovered_s - self.injected_s

    def public(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return d | {"recovery_s": self.recovery_s}


def schedule(nodes: int, rounds: int, seed: int, kinds: tuple[str, ...]) -> list[Fault]:
    """The seeded soak schedule: SOAK_COUNTS faults of the chosen kinds, spread evenly over
    rounds 2..R-10 in a random order, node faults on nodes taken in a shuffled rotation."""
    rng = random.Random(seed)
    picked = [k for k in kinds for _ in range(SOAK_COUNTS[k])]
    rng.shuffle(picked)
    last = max(rounds - 10, 2)  # a node fault needs a few rounds to show and to clear
    step = (last - 2) / max(len(picked) - 1, 1)
    order = list(range(nodes))
    rng.shuffle(order)
    faults, malformed = [], list(MALFORMED)
    rng.shuffle(malformed)
    for i, kind in enumerate(picked):
        fault = Fault(trigger=2 + round(i * step), kind=kind)
        if kind in NODE_KINDS:
            fault.node = order[i % nodes]
        fault.spec = {
            "stall": f"stall:{STALL_S:g}",
            "malformed": malformed[i % len(malformed)],
            "huge": f"huge:{HUGE_MB}",
        }.get(kind, "")
        faults.append(fault)
    return faults


def short_schedule() -> list[Fault]:
    """The CI variant's three faults on 3 nodes in 6 rounds."""
    return [  # the two node faults at once: their restarts' waits overlap
        Fault(trigger=1, kind="node-kill", node=2),
        Fault(trigger=1, kind="malformed", node=1, spec="nan"),
        Fault(trigger=3, kind="server-kill"),
    ]


def write_config(path: Path, out: Path, nodes: int, rounds: int, timeout: float) -> None:
    from fedlingua.config import RunConfig

    cfg = RunConfig.load(
        None,
        [
            f"output_dir={json.dumps(str(out))}",
            "name='chaos'",
            "data.source='cldr'",
            f"data.languages={json.dumps(list(LANGUAGES[:nodes]))}",
            "data.max_train_per_client=32",
            "data.max_eval_per_language=16",
            "data.max_length=24",
            "model.name='tiny'",
            "model.precision='fp32'",
            "method.num_virtual_tokens=4",
            "method.encoder_hidden_size=16",
            "train.batch_size=16",
            f"federation.rounds={rounds}",
            f"federation.round_timeout={timeout}",
            "federation.min_clients=1",
            "threads=1",
            "progress=false",
        ],
    )
    path.write_text(cfg.to_toml())


# ---- processes and memory -------------------------------------------------------------------
def process_kind(cmdline: str) -> str:
    for needle, kind in (
        ("flower-superlink", "SuperLink"),
        ("flower-supernode", "SuperNode"),
        ("fedlingua.flower_app.worker", "ClientApp worker"),
        ("flwr-serverapp", "ServerApp"),
        ("flower-superexec", "SuperExec"),
        ("flwr-superexec", "SuperExec"),
        ("flwr run", "flwr CLI"),
    ):
        if needle in cmdline:
            return kind
    return "other (bash launchers, CLI calls)"


def _kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class MemoryWatch:
    """Peak resident memory (the kernel's VmHWM) per process kind, sampled while it runs."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.peak_kib: dict[str, int] = {}
        self.peak_total_kib = 0

    def sample(self) -> None:
        total = 0
        for pid in tagged_pids(self.tag):
            kind = process_kind(cmdline(pid))
            self.peak_kib[kind] = max(self.peak_kib.get(kind, 0), _kib(pid, "VmHWM"))
            total += _kib(pid, "VmRSS")
        self.peak_total_kib = max(self.peak_total_kib, total)

    def figures(self) -> dict:
        mib = {k: round(v / 1024, 1) for k, v in sorted(self.peak_kib.items())}
        return {"peak_rss_mib": mib, "peak_total_rss_mib": round(self.peak_total_kib / 1024, 1)}


def leftovers(dep: Deployment, run_dir: Path) -> list[str]:
    """Processes of this federation still alive: by pid file, command line and marker."""
    left = []
    for pid_file in sorted((dep.dir / "pids").glob("*.pid")) if (dep.dir / "pids").exists() else []:
        pid = int(pid_file.read_text() or 0)
        if pid and Path(f"/proc/{pid}").exists() and _kib(pid, "VmRSS"):
            left.append(f"{pid_file.name}: pid {pid} alive")
    needles = (str(dep.dir), str(run_dir))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmd = cmdline(int(entry.name))
            if any(n in cmd for n in needles) and "benchmarks/chaos.py" not in cmd:
                left.append(f"pid {entry.name}: {cmd[:160]}")
    left += [f"pid {p} carries {MARKER}: {cmdline(p)[:160]}" for p in tagged_pids(dep.tag)]
    return left


# ---- the disk that fills up -----------------------------------------------------------------
def mount_tmpfs(folder: Path, size: int) -> str | None:
    """Mount a `size`-byte tmpfs on `folder`; None, or why it could not be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return None if proc.returncode == 0 else f"mount -t tmpfs refused: {proc.stderr.strip()}"


def unmount(folder: Path) -> None:
    if os.path.ismount(folder):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> Path:
    """Take every free byte of the (small) file system of `folder`."""
    filler = folder / "filler.bin"
    st = os.statvfs(folder)
    with filler.open("wb") as fh:
        fh.write(b"\0" * (st.f_bavail * st.f_frsize))
    return filler


def tensor_files_load(run_dir: Path) -> list[str]:
    """Every checkpoint and tensor file under `run_dir` loads; the problems otherwise."""
    from fedlingua.io import load_tensors
    from fedlingua.report import RunDir

    problems = []
    try:
        if RunDir(run_dir).load_checkpoint() is None:
            problems.append("no checkpoint")
    except Exception as exc:  # the checkpoint must load: any error is a finding
        problems.append(f"checkpoint: {type(exc).__name__}: {exc}")
    for path in sorted(run_dir.rglob("*.safetensors")):
        try:
            load_tensors(path)
        except Exception as exc:
            problems.append(f"{path.relative_to(run_dir)}: {type(exc).__name__}: {exc}")
    problems += [f"left-over temporary file {p.name}" for p in run_dir.rglob("*.tmp")]
    return problems


# ---- the soak -------------------------------------------------------------------------------
class Soak:
    """One federation, one run, one schedule: inject, observe, recover, check."""

    def __init__(self, dep: Deployment, run_dir: Path, clients: list[str], faults: list[Fault]):
        self.dep, self.run_dir, self.clients, self.faults = dep, run_dir, clients, faults
        self.t0 = time.monotonic()
        self.memory = MemoryWatch(dep.tag)
        self.observations: list[tuple[float, int, dict]] = []  # (time, segment, record)
        self.segment, self.last_round = 0, 0
        self.seen: set[str] = set()  # the metrics records observed so far
        self.resumes: list[dict] = []
        self.stopping: Fault | None = None  # the server fault whose run exit is expected
        self.log = dep.root / "run.log"
        self.bg: subprocess.Popen | None = None
        self.filler: Path | None = None
        self.disk_note = ""

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self, *extra: str) -> None:
        with self.log.open("a") as fh:
            fh.write(f"\n==== federation.sh run {' '.join(extra)} at {self.now():.1f} s\n")
        self.bg = self.dep.run_in_background(*extra, output=self.log)

    def observe(self) -> None:
        from fedlingua.io import CorruptFileError, read_jsonl

        try:
            records = read_jsonl(self.run_dir / "metrics.jsonl")
        except (CorruptFileError, OSError):  # replaced atomically: retry at the next poll
            return
        # a record is new by its content: after a server fault the file still holds the
        # rounds past the checkpoint until the resumed run truncates it and redoes them
        for record in records:
            key = json.dumps(record, sort_keys=True)
            if key not in self.seen:
                self.seen.add(key)
                self.observations.append((self.now(), self.segment, record))
                self.last_round = record["round"]

    def loop(self, deadline_s: float) -> None:
        self.start()
        while True:
            self.memory.sample()
            self.observe()
            self.step_faults()
            if self.bg.poll() is not None:
                if self.bg.returncode == 0 and self.stopping is None:
                    self.observe()
                    return
                if self.stopping is None:
                    raise ChaosFailure(f"the run stopped unexpectedly:\n{self.tail()}")
                self.recover_server()
            if self.now() > deadline_s:
                raise ChaosFailure(f"the soak did not finish within {deadline_s:.0f} s")
            time.sleep(0.5)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def inject(self, fault: Fault) -> None:
        fault.injected_s = self.now()
        node = f"node-{fault.node}"
        if fault.kind == "node-kill":
            self.dep.sh("kill", node)
            self.dep.sh("restart", node)
        elif fault.kind in NODE_KINDS:
            fault._log_mark = self.injections(fault.node)
            self.dep.sh("restart", node, "--fault", f"{fault.node}={fault.spec}")
        elif fault.kind == "server-kill":
            self.stopping = fault
            self.dep.sh("kill", "superlink")
        elif self.filler is None and self.disk_note:  # disk-full without a tmpfs
            fault.note = f"not injected: {self.disk_note}"
            fault.recovered_s = fault.injected_s
        else:
            self.stopping = fault
            self.filler = fill(self.run_dir / "checkpoint")
        print(f"chaos: {self.now():7.1f} s after round {self.last_round}: {fault.kind} {node}")

    def injections(self, node: int) -> int:
        log = self.dep.dir / "logs" / f"node-{node}.log"
        return log.read_text(errors="replace").count("FAULT INJECTION") if log.exists() else 0

    def step_faults(self) -> None:
        busy = {f.node for f in self.faults if f.injected_s is not None and f.recovered_s is None}
        for fault in self.faults:
            if fault.injected_s is None:
                due = self.last_round >= fault.trigger and self.stopping is None
                if due and (fault.kind in SERVER_KINDS or fault.node not in busy):
                    self.inject(fault)
                    busy.add(fault.node)
            elif fault.recovered_s is None and fault is not self.stopping:
                self.follow(fault)

    def follow(self, fault: Fault) -> None:
        """Note when `fault` shows in the records (then clear a node's fault) and when its
        node, or the resumed server, aggregates again."""
        client = self.clients[fault.node] if fault.node is not None else None
        if fault.kind in NODE_KINDS and fault._obs < 0:
            reason = REASONS[fault.spec if fault.kind == "malformed" else fault.kind]
            for i, (t, _, record) in enumerate(self.observations):
                failed = record["federations"]["global"]["failed"].get(client)
                if t <= fault.injected_s or failed is None or reason not in failed:
                    continue
                if fault.kind == "stall" and self.injections(fault.node) <= fault._log_mark:
                    continue  # missing because of the restart, not (yet) the stall
                fault._obs, fault.observed_round, fault.note = i, record["round"], failed
                if fault.kind != "node-kill":  # clear it: the node as `up` started it
                    self.dep.sh("restart", f"node-{fault.node}")
                break
        if fault._obs < 0:
            return
        if client is None:  # a server fault: _obs is the resumed run's segment
            later = [(t, r) for t, segment, r in self.observations if segment >= fault._obs]
        else:
            later = [(t, r) for t, _, r in self.observations[fault._obs + 1 :]]
        for t, record in later:
            fed = record["federations"]["global"]
            if fed["updated"] and (client is None or client in fed["succeeded"]):
                fault.recovered_s, fault.recovered_round = t, record["round"]
                return

    def recover_server(self) -> None:
        """The run stopped because of a server fault: check it, then resume it."""
        from fedlingua.report import RunDir

        fault, self.stopping = self.stopping, None
        text = self.log.read_text(errors="replace").rsplit("==== federation.sh run", 1)[-1]
        if fault.kind == "disk-full":
            text += (self.dep.dir / "logs" / "superlink.log").read_text(errors="replace")
            named = [line for line in text.splitlines() if "No space left on device" in line]
            if not named:
                raise ChaosFailure(f"disk full, but the run's log does not say so:\n{self.tail()}")
            fault.note = named[-1].strip()[:200]
        problems = tensor_files_load(self.run_dir)
        if problems:
            raise ChaosFailure(f"after {fault.kind}: unreadable checkpoint files: {problems}")
        last = RunDir(self.run_dir).load_checkpoint()[0]
        if fault.kind == "disk-full":
            self.filler.unlink()
        else:
            self.dep.sh("restart", "superlink")
        self.dep.wait_online(len(self.clients), timeout=300)
        self.segment += 1
        self.last_round = last
        fault._obs, fault.observed_round = self.segment, last
        self.resumes.append({"after": fault.kind, "checkpoint_round": last, "at_s": self.now()})
        print(f"chaos: {self.now():7.1f} s: resuming after round {last} ({fault.kind})")
        self.start("--resume", str(self.run_dir))


# ---- the checks -----------------------------------------------------------------------------
def account(run_dir: Path, rounds: int, faults: list[Fault]) -> tuple[list[str], dict]:
    """Check (a): every round and every sampled client accounted for, every fault seen."""
    from fedlingua.io import read_jsonl

    problems, records = [], read_jsonl(run_dir / "metrics.jsonl")
    numbers = [r["round"] for r in records]
    if numbers != list(range(1, rounds + 1)):
        problems.append(f"metrics.jsonl holds rounds {numbers}, expected 1..{rounds} once each")
    skipped = {}
    for r in records:
        fed = r["federations"]["global"]
        if not fed["updated"]:
            if not fed["skipped"]:
                problems.append(f"round {r['round']}: neither aggregated nor skipped with a reason")
            skipped[r["round"]] = fed["skipped"]
        lost = set(fed["sampled"]) - set(fed["succeeded"]) - set(fed["failed"])
        if lost or not all(fed["failed"].values()):
            problems.append(f"round {r['round']}: clients without an outcome: {sorted(lost)}")
    if not (run_dir / "results.json").exists():
        problems.append("the run did not finish (no results.json)")
    for f in faults:
        if f.injected_s is None:
            problems.append(f"{f.kind} (after round {f.trigger}) was never injected")
        elif f.observed_round is None and not f.note.startswith("not injected"):
            problems.append(f"{f.kind} on node-{f.node}: no round recorded its effect")
    aggregated = sum(r["federations"]["global"]["updated"] for r in records)
    return problems, {"rounds_aggregated": aggregated, "rounds_skipped": skipped}


def equals_replay(cfg_path: Path, run_dir: Path) -> tuple[list[str], float]:
    """The final model equals an in-process run of the same config and seed in which, each
    round, exactly the clients whose updates the soak aggregated take part (the others
    drop out). With server faults only, that is the uninterrupted fault-free run. Returns
    the problems and the largest relative L2 distance of a tensor."""
    from fedlingua.config import RunConfig
    from fedlingua.engine import load_final_states, run
    from fedlingua.federation.client import ClientDropout, handle_train
    from fedlingua.federation.payload import CONFIG_KEY
    from fedlingua.io import read_jsonl

    took_part = {
        r["round"]: set(r["federations"]["global"]["succeeded"])
        for r in read_jsonl(run_dir / "metrics.jsonl")
    }

    def replayed(bench, site, content, on_step=None, context=None):
        rnd = int(content[CONFIG_KEY]["server-round"])
        if site.client_id not in took_part.get(rnd, ()):
            raise ClientDropout(f"{site.client_id} was not aggregated in round {rnd}")
        return handle_train(bench, site, content, on_step=on_step, context=context)

    cfg = RunConfig.load(cfg_path)
    cfg.name = "replay-in-process"
    local = run(cfg, client_handler=replayed, log=lambda line: None)
    expected = load_final_states(local["run_dir"])["global"]
    final = load_final_states(run_dir)["global"]
    if set(final) != set(expected) or any(final[k].shape != t.shape for k, t in expected.items()):
        return [f"final model: tensors {sorted(final)} differ from the replay's"], float("inf")
    # per tensor, the relative L2 distance: equal up to float rounding means below REPLAY_RTOL
    distance = max(float((final[k] - t).norm() / (t.norm() + 1e-12)) for k, t in expected.items())
    if distance > REPLAY_RTOL:
        return [f"final model differs from the in-process replay: {distance:.2e}"], distance
    return [], distance


def recovery_by_kind(faults: list[Fault]) -> dict:
    by_kind: dict[str, list[float]] = {}
    for f in faults:
        if f.recovery_s is not None and not f.note.startswith("not injected"):
            by_kind.setdefault(f.kind, []).append(f.recovery_s)
    return {
        k: {"count": len(v), "median_s": statistics.median(v), "max_s": max(v)}
        for k, v in sorted(by_kind.items())
    }


# ---- one soak, its figures ------------------------------------------------------------------
def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def soak_once(nodes: int, rounds: int, faults: list[Fault], root: Path, timeout: float) -> dict:
    """Up, run under `faults`, check, down: the figures and the problems found."""
    from fedlingua.config import RunConfig
    from fedlingua.experiment import build

    cfg_path, run_dir = root / "chaos.toml", root / "runs" / "chaos"
    root.mkdir(parents=True, exist_ok=True)
    write_config(cfg_path, root / "runs", nodes, rounds, timeout)
    clients = [s.client_id for s in build(RunConfig.load(cfg_path)).sites()]  # by partition-id
    needs_disk = any(f.kind == "disk-full" for f in faults)
    disk_note = mount_tmpfs(run_dir / "checkpoint", TMPFS_BYTES) if needs_disk else None
    available = mem_available_mib()
    problems: dict[str, list[str]] = {}
    summary, up_s, wall_s = {"rounds_aggregated": 0, "rounds_skipped": {}}, None, None
    replay_distance = None
    with tagged_flower_env(root) as env:
        dep = Deployment(root, env, max_nodes=nodes)
        soak = Soak(dep, run_dir, clients, faults)
        soak.disk_note = disk_note or ""
        try:
            t = time.monotonic()
            dep.up(nodes, cfg_path)
            up_s = time.monotonic() - t
            soak.loop(deadline_s=up_s + rounds * 90 + 900)
            wall_s = soak.now()
            problems["a"], summary = account(run_dir, rounds, faults)
            replay_problems, replay_distance = equals_replay(cfg_path, run_dir)
            if all(f.kind in SERVER_KINDS for f in faults):  # the fault-free run: must match
                problems["a"] += replay_problems
            problems["b"] = tensor_files_load(run_dir)
        except AssertionError as exc:  # a ChaosFailure, or a federation.sh command that failed
            problems["run"] = [str(exc)[-4000:]]
        finally:
            soak.memory.sample()
            dep.sh("down", check=False, timeout=180)
            problems["c"] = leftovers(dep, run_dir)
            unmount(run_dir / "checkpoint")
    return _figures(nodes, rounds, timeout, faults, soak, summary, problems) | {
        "up_s": up_s,
        "wall_s": wall_s,
        "mem_available_at_start_mib": round(available),
        "replay_distance": replay_distance,
        "rounds_seen": [compact(t, segment, r) for t, segment, r in soak.observations],
    }


def compact(t: float, segment: int, record: dict) -> dict:
    """What the results keep of a round as the soak saw it (metrics.jsonl has the rest)."""
    fed = record["federations"]["global"]
    return {
        "seen_s": round(t, 1),
        "run": segment,  # 0, then one more after each resume
        "round": record["round"],
        "aggregated": sorted(fed["succeeded"]),
        "failed": fed["failed"],
        "skipped": fed["skipped"],
        "train_s": round(record["time"]["train_s"], 2),
    }


def _figures(nodes, rounds, timeout, faults, soak: Soak, summary: dict, problems: dict) -> dict:
    injected: dict[str, int] = {}
    for f in faults:
        if f.injected_s is not None and not f.note.startswith("not injected"):
            key = f"malformed ({f.spec})" if f.kind == "malformed" else f.kind
            injected[key] = injected.get(key, 0) + 1
    redone = sum(max(0, _round_before(soak, r) - r["checkpoint_round"]) for r in soak.resumes)
    return {
        "nodes": nodes,
        "rounds": rounds,
        "round_timeout_s": timeout,
        "faults_injected": injected,
        "rounds_aggregated": summary["rounds_aggregated"],
        "rounds_skipped": summary["rounds_skipped"],
        "resumes": soak.resumes,
        "rounds_redone_after_resume": redone,
        "recovery": recovery_by_kind(faults),
        "faults": [f.public() for f in faults],
        "memory": soak.memory.figures(),
        "steady_round_s": _steady_round_s(soak),
        "checks": {k: {"passed": not v, "problems": v} for k, v in problems.items()},
    }


def _round_before(soak: Soak, resume: dict) -> int:
    """The last round recorded before `resume` (rounds past its checkpoint are redone)."""
    seen = [r["round"] for t, _, r in soak.observations if t < resume["at_s"]]
    return max(seen, default=0)


def _steady_round_s(soak: Soak) -> float | None:
    """Median wall time of a round in which every client replied in time (no fault)."""
    times = [
        r["time"]["train_s"]
        for _, _, r in soak.observations
        if not r["federations"]["global"]["failed"]
    ]
    return statistics.median(times) if times else None


def max_nodes_estimate(runs: list[dict]) -> dict:
    """How many SuperNodes this machine holds with the tiny model, estimated from the
    measured runs: memory (peak RSS of a SuperNode + its worker against the memory
    available at the start) and time (the steady round time, extrapolated linearly in N,
    against the round timeout; and `up` time per node)."""
    big = max(runs, key=lambda r: r["nodes"])
    peak = big["memory"]["peak_rss_mib"]
    per_node = peak.get("SuperNode", 0) + peak.get("ClientApp worker", 0)
    fixed = sum(v for k, v in peak.items() if k not in ("SuperNode", "ClientApp worker"))
    reserve = 2048  # MiB left to the rest of the machine
    by_memory = int((big["mem_available_at_start_mib"] - fixed - reserve) // max(per_node, 1))
    timed = sorted((r["nodes"], r["steady_round_s"]) for r in runs if r["steady_round_s"])
    by_time = None
    if len(timed) >= 2 and timed[-1][0] > timed[0][0]:
        (n0, t0), (n1, t1) = timed[0], timed[-1]
        slope = max((t1 - t0) / (n1 - n0), 1e-6)
        by_time = int(n1 + (big["round_timeout_s"] - t1) / slope)
    limits = {"memory": by_memory}
    if by_time is not None:  # 2 cores: every node's polling and training adds to a round
        limits["CPU (the round time reaches federation.round_timeout)"] = by_time
    limiting = min(limits, key=limits.get)
    return {
        "per_node_rss_mib": round(per_node, 1),
        "fixed_rss_mib": round(fixed, 1),
        "reserve_mib": reserve,
        "by_memory": by_memory,
        "by_round_time": by_time,
        "steady_round_s": {r["nodes"]: r["steady_round_s"] for r in runs},
        "up_s_per_node": round(big["up_s"] / big["nodes"], 2) if big["up_s"] else None,
        "max_nodes": limits[limiting],
        "limiting_resource": limiting,
    }


def report(command: str, runs: list[dict], estimate: dict | None) -> list[str]:
    lines = [
        "# Chaos soak: a loopback federation under a seeded schedule of faults",
        "",
        f"Regenerated by `{command}`; the tiny model, TLS and SuperNode authentication on, one "
        "ClientApp worker per SuperNode, 2 cores shared with other benchmark processes.",
        "",
        "Recovery: from the injection (the kill; the restart that set a node's fault; the "
        "filling of the checkpoint disk) to the first round recorded afterwards that aggregated "
        "with that node's update (node faults: a round after the one that showed the fault), or "
        "to the resumed server's first aggregated round (server-kill, disk-full). Replay "
        "distance: the largest relative L2 distance of a final tensor from an in-process run of "
        "the same seed in which each round exactly the clients the soak aggregated take part.",
        "",
        "| nodes | rounds | faults injected | aggregated | skipped | redone after resume "
        "| replay distance | checks (a/b/c) | wall (s) |",
        "|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults_injected"].items()))
        checks = "/".join("pass" if c["passed"] else "FAIL" for c in r["checks"].values())
        lines.append(
            f"| {r['nodes']} | {r['rounds']} | {faults} | {r['rounds_aggregated']} "
            f"| {len(r['rounds_skipped'])} | {r['rounds_redone_after_resume']} "
            f"| {_distance(r['replay_distance'])} | {checks} "
            f"| {r['wall_s'] or 0:.0f} |"
        )
    lines += [
        "",
        "| nodes | fault | count | recovery median (s) | max (s) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        for kind, rec in r["recovery"].items():
            lines.append(
                f"| {r['nodes']} | {kind} | {rec['count']} | {rec['median_s']:.1f} "
                f"| {rec['max_s']:.1f} |"
            )
    lines += ["", "Peak resident memory (VmHWM) per process kind, MiB:", ""]
    kinds = sorted({k for r in runs for k in r["memory"]["peak_rss_mib"]})
    lines += ["| nodes | " + " | ".join(kinds) + " | all processes together |"]
    lines += ["|---:|" + "---:|" * (len(kinds) + 1)]
    for r in runs:
        m = r["memory"]
        cells = " | ".join(str(m["peak_rss_mib"].get(k, "")) for k in kinds)
        lines.append(f"| {r['nodes']} | {cells} | {m['peak_total_rss_mib']} |")
    return lines + _estimate_lines(estimate)


def _distance(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def _estimate_lines(e: dict | None) -> list[str]:
    if not e:
        return []
    return [
        "",
        f"**Most SuperNodes this machine holds (estimated, not run): {e['max_nodes']}, "
        f"limited by {e['limiting_resource']}.** A SuperNode and its worker peak at "
        f"{e['per_node_rss_mib']} MiB together and the SuperLink, ServerApp, SuperExec and CLI "
        f"at {e['fixed_rss_mib']} MiB, so the memory available at the start (less "
        f"{e['reserve_mib']} MiB) holds {e['by_memory']} nodes; the steady round time (every "
        "client replying: "
        + ", ".join(f"{t:.1f} s with {n} nodes" for n, t in e["steady_round_s"].items())
        + "), extrapolated linearly in N, reaches the round timeout at "
        f"{e['by_round_time']} nodes; `up` took {e['up_s_per_node']} s per node. Larger N "
        "was not run: the imports of N workers alone would hold both cores for minutes and "
        "disturb the other benchmarks on this machine.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="3,8", help="comma-separated N (at most 8)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(SOAK_COUNTS), help="fault kinds to draw")
    parser.add_argument("--short", action="store_true", help="3 nodes, 6 rounds, 3 faults")
    parser.add_argument("--results", type=Path, default=None, help="folder for chaos.json/.md")
    parser.add_argument("--work", type=Path, default=None, help="folder for the federations")
    args = parser.parse_args(argv)
    command = "python benchmarks/chaos.py " + " ".join(argv if argv is not None else sys.argv[1:])
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if unknown := set(kinds) - set(SOAK_COUNTS):
        parser.error(f"--kinds: unknown {sorted(unknown)}; choose from {list(SOAK_COUNTS)}")
    sizes = [3] if args.short else [int(n) for n in args.nodes.split(",")]
    if not all(1 <= n <= len(LANGUAGES) for n in sizes):
        parser.error(f"--nodes: 1..{len(LANGUAGES)} (one CLDR language per node)")
    work = args.work or Path(__import__("tempfile").mkdtemp(prefix="fedlingua-chaos-"))
    runs: list[dict] = []
    for n in sizes:
        rounds = 6 if args.short else args.rounds
        faults = short_schedule() if args.short else schedule(n, rounds, args.seed, kinds)
        timeout = 8.0 if args.short else ROUND_TIMEOUT_S
        print(f"chaos: {n} nodes, {rounds} rounds, faults {[(f.trigger, f.kind) for f in faults]}")
        runs.append(soak_once(n, rounds, faults, work / f"n{n}", timeout) | {"seed": args.seed})
        estimate = max_nodes_estimate(runs) if len(runs) > 1 else None
        data = {"command": command, "runs": runs, "max_nodes": estimate}
        write_results("chaos", data, report(command, runs, estimate), args.results or RESULTS)
    failed = [
        f"N={r['nodes']} check {k}: {p}"
        for r in runs
        for k, c in r["checks"].items()
        for p in c["problems"]
    ]
    for line in failed:
        print(f"chaos: FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
