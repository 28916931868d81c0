"""Training-engine figures on the offline default model (e5-small) and the built-in CLDR data.

1. Client-update throughput (training samples/s) per method, one client, same data: the
   engine's own client update (`fedlingua.training.local_update`) is timed, call by call.
2. Peak memory of the in-process simulation with 4, 16 and 64 clients (one round each, in
   fresh subprocesses running `fedlingua.engine.run`): it should stay close to flat,
   since clients share one backbone.
3. The fraction of those rounds (`Federation.step` through the in-process grid, as the
   engine runs them) spent outside client compute.

Usage:  .venv/bin/python benchmarks/engine.py [--quick] [--results-dir DIR]
Writes benchmarks/results/engine.md and engine.json (or into DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import RESULTS, client_updates, update_rates, write_results

BATCH = 32


def _config(tmp: str, **overrides):
    from fedlingua.config import RunConfig, apply_override

    raw: dict = {}
    base = [
        f"output_dir={json.dumps(tmp)}",
        "progress=false",
        "data.source=cldr",
        "data.max_length=32",
        f"train.batch_size={BATCH}",
        "federation.rounds=1",
    ]
    for item in base + [f"{k}={v}" for k, v in overrides.items()]:
        apply_override(raw, item)
    return RunConfig.from_dict(raw).validate()


def throughput(methods: list[str], steps: int, updates: int) -> dict:
    """Client updates of `steps` steps through the engine's own `local_update`, per method
    (same French client, same data): medians over `updates` updates."""
    from fedlingua.experiment import build
    from fedlingua.models import load_backbone

    backbone = load_backbone("e5-small")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            # a client of steps x batch examples: one update (one epoch) is `steps` steps
            cfg = _config(
                tmp,
                **{
                    "method.name": json.dumps(method),
                    "data.languages": '["fr"]',
                    "data.max_train_per_client": steps * BATCH,
                },
            )
            exp = build(cfg, backbone=backbone)
            bench = exp.bench
            data = exp.train[exp.clients[0].client_id]
            _, results = client_updates(bench, cfg, data, seeds=range(1, updates + 1))
            out[method] = {
                "trainable_params": bench.params.trainable,
                "precision": bench.precision,
                "client_examples": len(data),
                **update_rates(results),
            }
            del bench
    return out


def _child(clients: int, max_train: int) -> None:
    """One in-process federated round; prints peak RSS and timing as JSON."""
    from fedlingua.data import DEFAULT_CLDR_LOCALES
    from fedlingua.engine import run

    langs = list(DEFAULT_CLDR_LOCALES)[: min(clients, 8)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(
            tmp,
            **{
                "data.languages": json.dumps(langs),
                "data.clients_per_language": clients // len(langs),
                "data.max_train_per_client": max_train,
                "data.max_eval_per_language": 32,
            },
        )
        res = run(cfg, log=lambda s: None)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "clients": clients,
                "peak_rss_mb": peak_kb / 1024,
                "train_s": res["time"]["train_s"],
                "client_compute_s": res["time"]["client_compute_s"],
                "overhead_fraction": res["time"]["overhead_fraction"],
            }
        )
    )


def memory(counts: list[int], max_train: int) -> list[dict]:
    rows = []
    for n in counts:
        cmd = [sys.executable, __file__, "--child", str(n), str(max_train)]
        env = dict(os.environ, FEDLINGUA_THREADS=os.environ.get("FEDLINGUA_THREADS", "2"))
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    ap.add_argument("--results-dir", type=Path, default=RESULTS, help="where to write")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    from fedlingua.runtime import configure_threads, environment

    threads = configure_threads(None)
    steps, updates = (2, 2) if args.quick else (4, 3)
    thr = throughput(["prompt-encoder", "soft-prompt", "lora", "full"], steps, updates)
    mem = memory([4, 16, 64] if not args.quick else [4, 16], max_train=16)
    command = "python benchmarks/engine.py" + (" --quick" if args.quick else "")
    result = {"command": command, "threads": threads, "environment": environment()}
    result |= {"throughput": thr, "memory": mem}
    write_results("engine", result, report(command, threads, thr, mem), args.results_dir)


def report(command: str, threads: int, thr: dict, mem: list[dict]) -> list[str]:
    first = next(iter(thr.values()))
    lines = [
        "# Training engine: throughput, memory, round overhead",
        "",
        f"Command: `{command}` (torch threads {threads}; e5-small, precision "
        f"{first['precision']} (the default); CLDR data, batch {BATCH}, "
        "max 32 text tokens + virtual tokens).",
        "",
        "## Client-update throughput (French CLDR client)",
        "",
        f"Each figure times `fedlingua.training.local_update`, the engine's client update: "
        f"one call = one epoch of {first['steps_measured'] // first['updates_measured']} steps "
        f"over a {first['client_examples']}-example client (optimizer set-up, state "
        "swaps and gradient clipping included); step time = update time / steps, medians "
        f"over {first['updates_measured']} updates after a warm-up update.",
        "",
        "| method | trainable params | median step (s) | samples/s |",
        "|---|---:|---:|---:|",
    ]
    for m, r in thr.items():
        lines.append(
            f"| {m} | {r['trainable_params']:,} | {r['median_step_s']:.3f} | "
            f"{r['samples_per_s']:.1f} |"
        )
    lines += [
        "",
        "## In-process simulation: peak memory and round overhead (prompt-encoder, 1 round)",
        "",
        "Clients = up to 8 CLDR languages x k clients per language, 16 training examples each; "
        "each row is a fresh process running `fedlingua.engine.run` (round time = "
        "`Federation.step` through the in-process grid).",
        "",
        "| clients | peak RSS (MB) | round train time (s) | client compute (s) | outside compute |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in mem:
        lines.append(
            f"| {r['clients']} | {r['peak_rss_mb']:.0f} | {r['train_s']:.1f} | "
            f"{r['client_compute_s']:.1f} | {100 * r['overhead_fraction']:.1f}% |"
        )
    return lines


if __name__ == "__main__":
    main()
