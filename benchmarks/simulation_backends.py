"""In-process simulation vs Flower's simulation runtime (Ray), same App, model, data and config.

One fedlingua config (e5-small, federated prompt-encoder, the 8 built-in CLDR languages
as 8 clients, 3 rounds) runs

* in-process: `fedlingua run` (one process, one frozen backbone shared by all clients);
* under `flwr run` on the local simulation runtime (Ray): the repository's Flower App,
  8 virtual SuperNodes, each Ray actor a separate process holding its own model copy;
  once with one actor per core and once with one actor per client.

Both are started as fresh processes and timed from start to exit. Memory is the peak,
over samples every 0.5 s, of the summed proportional set size (PSS: shared pages split
between the processes that map them) of every process the run started (found by an
environment marker they all inherit); per-round time is read from the run's own
metrics.jsonl (send to last reply, evaluation excluded).

Usage:  .venv/bin/python benchmarks/simulation_backends.py [--rounds 3] [--actors 2,8] [--fuse 8]
Writes benchmarks/results/simulation_backends.md and .json. Needs Linux /proc.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the Flower processes
from flower_processes import (  # noqa: E402
    BIN,
    MARKER,
    REPO,
    flwr_run_command,
    local_flower_env,
    tagged_pids,
)

LANGUAGES = ["fr", "sw", "ha", "am", "yo", "lg", "sn", "rn"]


def _memory_mb(pids: list[int]) -> tuple[float, float]:
    """(PSS, RSS) summed over `pids`, in MB."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss / 1024, rss / 1024


def measured(cmd: list[str], env: dict, timeout: float) -> dict:
    """Run `cmd` in a fresh process tree; wall time, peak PSS/RSS and process count of the
    processes carrying env's marker (use inside `local_flower_env`, which stops them)."""
    tag = env[MARKER]
    peak = {"pss_mb": 0.0, "rss_mb": 0.0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pids = tagged_pids(tag)
            pss, rss = _memory_mb(pids)
            if pss > peak["pss_mb"]:
                peak.update(pss_mb=pss, rss_mb=rss)
            peak["processes"] = max(peak["processes"], len(pids))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(  # own session: the same scheduler group treatment as Ray's
            cmd,
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    finally:
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
        )
    return {"wall_s": wall, **peak, "log": proc.stdout + proc.stderr}


def _rounds(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["time"]["train_s"] for x in lines]


def _run_config(args, tmp: Path):
    from fedlingua.config import RunConfig

    return RunConfig.load(
        None,
        [
            f"output_dir={json.dumps(str(tmp / 'runs'))}",
            "data.source='cldr'",
            f"data.languages={json.dumps(LANGUAGES)}",
            f"data.max_train_per_client={args.examples}",
            "data.max_eval_per_language=32",
            "data.max_length=32",
            "model.name='e5-small'",
            "train.batch_size=16",
            f"federation.rounds={args.rounds}",
            f"evaluation.every={args.rounds}",
            "progress=false",
        ],
    )


def _row(cfg, tmp: Path, threads: int, actors: int, fuse: int = 1) -> dict:
    """One timed run of `cfg`: in-process with `threads` torch threads (actors=0; `fuse`
    clients' local steps through the backbone at once), else under `flwr run` on Ray with
    `actors` single-threaded actors."""
    cfg = copy.deepcopy(cfg)
    cfg.federation.fuse_clients = fuse
    cfg.name = f"in-process-{threads}-fused{fuse}" if actors == 0 else f"ray-{actors}"
    path = tmp / f"{cfg.name}.toml"
    path.write_text(cfg.to_toml())
    with local_flower_env(tmp / cfg.name) as env:
        if actors == 0:
            print(f"in-process, {threads} threads, {fuse} fused client(s) ...", flush=True)
            env |= {"FEDLINGUA_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
            cmd = [str(BIN / "fedlingua"), "run", "--config", str(path)]
        else:
            print(f"flwr run, Ray, {actors} actors ...", flush=True)
            cmd = flwr_run_command(path, len(LANGUAGES), f"init-args-num-cpus={actors}")
        m = measured(cmd, env, 1800)
    return {**m, "round_s": _rounds(tmp / "runs" / cfg.name)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--actors", default="1,2,8", help="Ray actor counts (comma-separated)")
    ap.add_argument(
        "--threads", default="1,2", help="torch threads of the in-process runs (comma-separated)"
    )
    ap.add_argument("--examples", type=int, default=32, help="training examples per client")
    ap.add_argument(
        "--fuse",
        default="",
        help="also in-process with this many clients fused per step (comma-separated K)",
    )
    args = ap.parse_args()
    args.load_at_start = os.getloadavg()[0]
    from fedlingua.runtime import environment

    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="fedlingua-simbench-"))
    cfg = _run_config(args, tmp)
    rows = []
    for threads in [int(t) for t in args.threads.split(",") if t]:
        rows.append(
            {
                "backend": f"in-process (1 process, {threads} torch thread(s))",
                "cores_used": threads,
                "actors": 0,
                **_row(cfg, tmp, threads, 0),
            }
        )
    for k in [int(x) for x in args.fuse.split(",") if x]:
        rows.append(
            {
                "backend": f"in-process, {k} clients fused per step (1 process, 1 torch thread)",
                "cores_used": 1,
                "actors": 0,
                "fused": k,
                **_row(cfg, tmp, 1, 0, fuse=k),
            }
        )
    for actors in [int(a) for a in args.actors.split(",") if a]:
        rows.append(
            {
                "backend": f"Flower simulation runtime (Ray), {actors} actor(s) x 1 thread",
                "cores_used": min(actors, cores),
                "actors": actors,
                **_row(cfg, tmp, 1, actors),
            }
        )
    for r in rows:
        print(r["backend"], f"{r['wall_s']:.1f} s", f"{r['pss_mb']:.0f} MB PSS", r["round_s"])
    report(args, rows, environment(), cores, cfg.model.precision)


def report(args, rows: list[dict], env: dict, cores: int, precision: str) -> None:
    inproc = {r["cores_used"]: r for r in rows if r["actors"] == 0 and not r.get("fused")}
    command = (
        f"python benchmarks/simulation_backends.py --rounds {args.rounds} "
        f"--actors {args.actors} --threads {args.threads} --examples {args.examples}"
        + (f" --fuse {args.fuse}" if args.fuse else "")
    )
    lines = [
        "# In-process simulation vs Flower simulation runtime (Ray)",
        "",
        f"Command: `{command}`; {cores} cores, torch {env['packages']['torch']}, "
        f"flwr {env['packages'].get('flwr', '?')}; load average (1 min) at the start "
        f"{args.load_at_start:.1f}, at the end {os.getloadavg()[0]:.1f}: compare rows "
        "within this file only, and only on a quiet machine (with other jobs running, "
        "2-thread rows collapse and Ray's processes, in sessions of their own, get a "
        "different CPU share under the kernel's autogroup scheduling).",
        "",
        f"Same config for every row: e5-small, federated prompt-encoder ({precision}), "
        f"{len(LANGUAGES)} CLDR languages as {len(LANGUAGES)} clients, {args.examples} "
        f"training examples per client, batch 16, {args.rounds} rounds, test evaluation after "
        "the last round. Wall = the whole command from start to exit (imports, model load, "
        "Ray start-up, training, evaluation, shutdown). Round = median per-round time from "
        "the run's metrics.jsonl (send to last reply). Memory = peak of the summed PSS of "
        "all processes of the run (RSS sum in brackets: it counts shared pages once per "
        "process). Ratios compare with the in-process row using the same number of cores "
        "(else the first row).",
        "",
        "| backend | cores used | wall (s) | median round (s) | peak memory PSS (MB) | "
        "[RSS sum] | processes | wall vs in-process | round vs in-process | memory vs "
        "in-process |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = inproc.get(r["cores_used"], rows[0])
        rnd = statistics.median(r["round_s"])
        lines.append(
            f"| {r['backend']} | {r['cores_used']} | {r['wall_s']:.1f} | {rnd:.1f} | "
            f"{r['pss_mb']:.0f} | "
            f"[{r['rss_mb']:.0f}] | {r['processes']} | {r['wall_s'] / base['wall_s']:.2f}x | "
            f"{rnd / statistics.median(base['round_s']):.2f}x | "
            f"{r['pss_mb'] / base['pss_mb']:.2f}x |"
        )
    ray = [r for r in rows if r["actors"]]
    for f in (r for r in rows if r.get("fused") and ray):
        fused = statistics.median(f["round_s"])
        lines.append("")
        lines.append(
            f"{f['fused']} fused clients per step, per round against Flower's Ray runtime: "
            + ", ".join(
                f"{r['actors']} actor(s) {statistics.median(r['round_s']) / fused:.2f}x slower"
                for r in rows
                if r["actors"]
            )
            + " (>1: the fused in-process round is faster; Ray's rows may use more cores)."
        )
    slim = [{k: v for k, v in r.items() if k != "log"} for r in rows]
    write_results(
        "simulation_backends", {"command": command, "rows": slim, "environment": env}, lines
    )


if __name__ == "__main__":
    main()
