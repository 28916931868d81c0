"""How close a client update comes to this CPU's arithmetic limit, per method and precision.

In one process:
1. the matrix-product peak of this machine for each precision (square matmuls: fp32, fp32
   through oneDNN, bf16; median of repeats);
2. the achieved GFLOP/s of client updates for each method on e5-small, timing the engine's
   own client update (`fedlingua.training.local_update`, one call = one epoch of --steps
   steps), counting the FLOPs of the encoder's matrix products (forward, plus the
   input-gradient backward for frozen weights, plus the weight-gradient backward for
   trained weights), and their ratio to the peak of the dtype in use;
3. the speed-up of the defaults (length-bucketed dynamic padding, the chosen precision)
   against a plain fp32 pad-to-max-length baseline on the same examples;
4. with --compile: eager vs torch.compile'd backbone encoder.

The in-process vs Flower/Ray simulation comparison is benchmarks/simulation_backends.py.

Data: SIB-200 sentences (fra_Latn train) when ../shared/data is present, else CLDR names.

Usage:  .venv/bin/python benchmarks/throughput.py [--steps N] [--updates U] [--results-dir DIR]
Writes benchmarks/results/throughput.md and throughput.json (or into DIR).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
from harness import RESULTS, WARMUP_STEPS, client_updates, update_rates, write_results

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit, default_data_root, encode, iterate_batches, load_dataset
from fedlingua.models import load_backbone
from fedlingua.runtime import configure_threads, environment, onednn_fp32_matmuls
from fedlingua.training import build_workbench

PRECISIONS = ("fp32", "fp32-onednn", "bf16")


def matmul_peak(precision: str, n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of square products in the dtype and matmul mode a precision uses."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    mode = onednn_fp32_matmuls() if precision == "fp32-onednn" else contextlib.nullcontext()
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    times = []
    with mode:
        for _ in range(2):
            a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def encoder_flops(
    cfg, batch: torch.Tensor, virtual: int, method: str, trained_frac: float
) -> float:
    """FLOPs of the encoder's matrix products for one training step on `batch`."""
    h, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    b, length = batch.shape
    length += virtual
    tokens = b * length
    dense = tokens * layers * (8 * h * h + 4 * h * f)  # QKV + out (4 h^2) and FFN (2 h f), x2
    attention = layers * b * 4 * length * length * h  # QK^T and AV
    forward = dense + attention
    # backward: input gradients always (prompt methods need them down to the input);
    # weight gradients of the dense products only where weights train.
    backward = forward + dense * (1.0 if method == "full" else trained_frac)
    return forward + backward


def update_flops(
    bench, config, data: EncodedSplit, batch_size: int, seed: int, trained_frac: float
) -> float:
    """FLOPs of the encoder's matrix products in the one-epoch client update with `seed`: its
    batches are `iterate_batches(shuffle=True, seed=seed)`, `local_update`'s first epoch."""
    virtual, method = bench.method.virtual_tokens, bench.method.name
    batches = iterate_batches(
        data, batch_size=batch_size, pad_id=bench.pad_id, shuffle=True, seed=seed
    )
    return sum(
        encoder_flops(config, b["input_ids"], virtual, method, trained_frac) for b in batches
    )


def padded(data: EncodedSplit, length: int, pad_id: int) -> EncodedSplit:
    """Every row padded with pad tokens to `length`: batches of the pad-to-max-length shape
    (the pads are attended, which costs the same products as masking them)."""
    rows = [ids + [pad_id] * (length - len(ids)) for ids in data.input_ids]
    return EncodedSplit(input_ids=rows, labels=data.labels, langs=data.langs)


def _config(args, **overrides: str) -> RunConfig:
    items = [f"train.batch_size={args.batch_size}"] + [f"{k}={v}" for k, v in overrides.items()]
    return RunConfig.load(None, items)


def method_rows(backbone, num_labels: int, data: EncodedSplit, peak: dict, args) -> dict:
    """Step time, samples/s and achieved GFLOP/s of each method's client update per precision."""
    total = sum(p.numel() for p in backbone.encoder.encoder.parameters())
    seeds = range(1, args.updates + 1)
    results = {}
    for method in ("prompt-encoder", "soft-prompt", "lora", "full"):
        for precision in PRECISIONS:
            cfg = _config(args, **{"method.name": method, "model.precision": precision})
            bench = build_workbench(backbone, num_labels, cfg)
            trained = sum(
                p.numel()
                for n, p in bench.model.named_parameters()
                if p.requires_grad and "lora" in n
            )
            _, updates = client_updates(bench, cfg, data, seeds)
            flops = [
                update_flops(
                    bench, backbone.encoder.config, data, args.batch_size, s, trained / total
                )
                for s in seeds
            ]
            gflops = statistics.median(
                f / r.compute_s / 1e9 for f, r in zip(flops, updates, strict=True)
            )
            results[f"{method}/{precision}"] = update_rates(updates) | {
                "gflops": gflops,
                "fraction_of_peak": gflops / peak[precision],
            }
            print(method, precision, results[f"{method}/{precision}"], flush=True)
            del bench
    return results


def padding_rows(backbone, num_labels: int, data: EncodedSplit, args) -> dict:
    """Samples/s of the prompt-encoder client update: defaults vs a plain fp32,
    pad-to-max-length baseline on the same examples."""
    speed = {}
    for label, precision, pad in (
        ("baseline fp32, pad to max", "fp32", True),
        ("dynamic padding fp32", "fp32", False),
        ("dynamic padding fp32-onednn (default)", "fp32-onednn", False),
        ("dynamic padding bf16", "bf16", False),
    ):
        cfg = _config(args, **{"model.precision": precision})
        bench = build_workbench(backbone, num_labels, cfg)
        examples = padded(data, args.max_length, bench.pad_id) if pad else data
        _, updates = client_updates(bench, cfg, examples, range(1, args.updates + 1))
        speed[label] = sum(r.num_examples for r in updates) / sum(r.compute_s for r in updates)
        del bench
    return speed


def compile_rows(backbone, num_labels: int, data: EncodedSplit, args) -> dict:
    """Eager vs torch.compile'd encoder per precision (fresh inductor cache in a temp dir)."""
    import os
    import tempfile

    out = {}
    seeds = range(1, args.updates + 1)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        for precision in ("fp32", "fp32-onednn"):
            cfg = _config(args, **{"model.precision": precision})
            bench = build_workbench(backbone, num_labels, cfg)
            _, eager = client_updates(bench, cfg, data, seeds)
            torch._dynamo.reset()
            bench.model.get_base_model().encoder.compile(dynamic=True)
            # the warm-up update's first steps compile
            compile_s, compiled = client_updates(bench, cfg, data, seeds)
            out[precision] = {
                "eager_step_s": update_rates(eager)["median_step_s"],
                "compiled_step_s": update_rates(compiled)["median_step_s"],
                "compile_s": compile_s,
            }
            print("compile", precision, out[precision], flush=True)
            del bench
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps per client update")
    ap.add_argument("--updates", type=int, default=3, help="measured client updates per row")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile of the backbone encoder (minutes of compilation)",
    )
    ap.add_argument("--results-dir", type=Path, default=RESULTS, help="where to write")
    args = ap.parse_args()
    threads = configure_threads(None)
    peak = {p: matmul_peak(p) for p in PRECISIONS}
    backbone = load_backbone("e5-small")
    if default_data_root() is not None:
        ds, lang, source = load_dataset("sib200", languages=["fra_Latn"]), "fra_Latn", "sib200"
    else:
        ds, lang, source = load_dataset("cldr", languages=["fr"]), "fr", "cldr"
    # one client update = one epoch over these rows = `steps` steps
    rows = ds.split(lang, "train")[: args.steps * args.batch_size]
    data = encode(backbone.tokenizer, rows, max_length=args.max_length, text_prefix="query: ")
    labels = len(ds.labels)
    results = method_rows(backbone, labels, data, peak, args)
    speed = padding_rows(backbone, labels, data, args)
    compiled = compile_rows(backbone, labels, data, args) if args.compile else {}
    command = "python benchmarks/throughput.py " + " ".join(
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if v is not False and k != "results_dir"
    )
    out = {
        "command": command,
        "threads": threads,
        "data": f"{source}:{lang}, {len(rows)} training examples, max_length {args.max_length}",
        "peak_gflops": peak,
        "methods": results,
        "samples_per_s": speed,
        "compile": compiled,
        "environment": environment(),
    }
    write_results("throughput", out, report(out, args), args.results_dir)


def report(out: dict, args) -> list[str]:
    peak, speed, compiled = out["peak_gflops"], out["samples_per_s"], out["compile"]
    base = speed["baseline fp32, pad to max"]
    lines = [
        "# Client-update throughput against this CPU's matrix-product peak",
        "",
        f"Command: `{out['command']}`; torch threads {out['threads']}; data {out['data']}; "
        f"batch {args.batch_size}; e5-small. Each row times the engine's client update "
        f"(`fedlingua.training.local_update`, one call = one epoch = {args.steps} steps, "
        "optimizer set-up, state swaps and gradient clipping included); medians over "
        f"{args.updates} updates after a warm-up update; step time = update time / steps.",
        "",
        "Matrix-product peak (2048x2048) of each precision: "
        + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peak.items())
        + " (fp32-onednn: fp32 tensors, products through oneDNN; fp32 accuracy checked by "
        "`fedlingua.runtime.onednn_fp32_error`).",
        "",
        "| method / precision | median step (s) | samples/s | achieved GFLOP/s | of its peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, r in out["methods"].items():
        lines.append(
            f"| {key} | {r['median_step_s']:.3f} | {r['samples_per_s']:.1f} | {r['gflops']:.0f} | "
            f"{100 * r['fraction_of_peak']:.0f}% |"
        )
    lines += [
        "",
        "Speed of the prompt-encoder client update on the same examples (the baseline's rows "
        "are padded to max length before the update):",
        "",
        "| setting | samples/s | speed-up |",
        "|---|---:|---:|",
    ]
    for label, v in speed.items():
        lines.append(f"| {label} | {v:.1f} | {v / base:.2f}x |")
    if compiled:
        lines += [
            "",
            "torch.compile (inductor, `dynamic=True` because padding is dynamic) of the "
            "backbone encoder, prompt-encoder client update; compile time is the "
            f"{WARMUP_STEPS}-step warm-up update with an empty compilation cache:",
            "",
            "| precision | eager step (s) | compiled step (s) | speed-up | "
            "compile + first steps (s) |",
            "|---|---:|---:|---:|---:|",
        ]
        for precision, r in compiled.items():
            lines.append(
                f"| {precision} | {r['eager_step_s']:.3f} | {r['compiled_step_s']:.3f} | "
                f"{r['eager_step_s'] / r['compiled_step_s']:.2f}x | {r['compile_s']:.0f} |"
            )
    return lines


if __name__ == "__main__":
    main()
