"""Training-engine figures on the offline default model (e5-small) and the built-in CLDR data.

1. Client-update throughput (training samples/s) per method, one client, same data.
2. Peak memory of the in-process simulation with 4, 16 and 64 clients (one round each, in
   fresh subprocesses): it should stay close to flat, since clients share one backbone.
3. The fraction of a round spent outside client compute.

Usage:  .venv/bin/python benchmarks/engine.py [--quick]
Writes benchmarks/results/engine.md and engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _config(tmp: str, **overrides):
    from fedlingua.config import RunConfig, apply_override

    raw: dict = {}
    base = [
        f"output_dir={json.dumps(tmp)}",
        "progress=false",
        "data.source=cldr",
        "data.max_length=32",
        "train.batch_size=32",
        "federation.rounds=1",
    ]
    for item in base + [f"{k}={v}" for k, v in overrides.items()]:
        apply_override(raw, item)
    return RunConfig.from_dict(raw).validate()


def throughput(methods: list[str], steps: int) -> dict:
    """Median samples/s of client-update steps per method (same client, same batches)."""
    import torch

    from fedlingua.data import iterate_batches
    from fedlingua.methods import make_method
    from fedlingua.models import load_backbone
    from fedlingua.paradigms import prepare
    from fedlingua.training import build_workbench

    backbone = load_backbone("e5-small")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            cfg = _config(tmp, **{"method.name": json.dumps(method), "data.languages": '["fr"]'})
            virtual = make_method(cfg.method).virtual_tokens
            prep = prepare(cfg, backbone=backbone, virtual_tokens=virtual)
            bench = build_workbench(backbone, len(prep.dataset.labels), cfg)
            data = prep.train[prep.clients[0].client_id]
            params = [p for p in bench.model.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=1e-4)
            times, tokens = [], []
            batches = iterate_batches(data, batch_size=32, pad_id=bench.pad_id, shuffle=True)
            bench.model.train()
            for i, batch in zip(range(steps + 2), batches, strict=False):
                t0 = time.perf_counter()
                out_ = bench.model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                )
                loss = torch.nn.functional.cross_entropy(out_.logits.float(), batch["labels"])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if i >= 2:  # the first steps warm up allocators and kernels
                    times.append(time.perf_counter() - t0)
                    tokens.append(int(batch["input_ids"].shape[0]))
            per_step = statistics.median(times)
            out[method] = {
                "trainable_params": bench.params.trainable,
                "median_step_s": per_step,
                "samples_per_s": statistics.median(
                    n / t for n, t in zip(tokens, times, strict=True)
                ),
                "steps_measured": len(times),
            }
            del bench, opt
    return out


def _child(clients: int, max_train: int) -> None:
    """One in-process federated round; prints peak RSS and timing as JSON."""
    from fedlingua.data import DEFAULT_CLDR_LOCALES
    from fedlingua.paradigms import run

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
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    from fedlingua.config import RunConfig
    from fedlingua.runtime import configure_threads, environment, resolve_precision

    threads = configure_threads(None)
    steps = 4 if args.quick else 12
    thr = throughput(["prompt-encoder", "soft-prompt", "lora", "full"], steps)
    mem = memory([4, 16, 64] if not args.quick else [4, 16], max_train=16)
    command = "python benchmarks/engine.py" + (" --quick" if args.quick else "")
    result = {"command": command, "threads": threads, "environment": environment()}
    result |= {"throughput": thr, "memory": mem}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Training engine: throughput, memory, round overhead",
        "",
        f"Command: `{command}` (torch threads {threads}; e5-small, precision "
        f"{resolve_precision(RunConfig().model.precision)} (the default); CLDR data, batch 32, "
        "max 32 text tokens + virtual tokens).",
        "",
        "## Client-update throughput (median over steps, French CLDR client)",
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
        "each row is a fresh process.",
        "",
        "| clients | peak RSS (MB) | round train time (s) | client compute (s) | outside compute |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in mem:
        lines.append(
            f"| {r['clients']} | {r['peak_rss_mb']:.0f} | {r['train_s']:.1f} | "
            f"{r['client_compute_s']:.1f} | {100 * r['overhead_fraction']:.1f}% |"
        )
    (RESULTS / "engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
