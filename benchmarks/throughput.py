"""How close a client update comes to this CPU's arithmetic limit, per method and precision.

In one process:
1. the matrix-product peak of this machine for each precision (square matmuls: fp32, fp32
   through oneDNN, bf16; median of repeats);
2. the achieved GFLOP/s of client-update steps (forward + backward + AdamW) for each method
   on e5-small, counting the FLOPs of the encoder's matrix products (forward, plus the
   input-gradient backward for frozen weights, plus the weight-gradient backward for
   trained weights), and their ratio to the peak of the dtype in use;
3. the speed-up of the defaults (length-bucketed dynamic padding, the chosen precision)
   against a plain fp32 pad-to-max-length baseline on the same examples;
4. with --compile: eager vs torch.compile'd backbone encoder.

The in-process vs Flower/Ray simulation comparison is benchmarks/simulation_backends.py.

Data: SIB-200 sentences (fra_Latn train) when ../shared/data is present, else CLDR names.

Usage:  .venv/bin/python benchmarks/throughput.py [--steps N]
Writes benchmarks/results/throughput.md and throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit, default_data_root, encode, iterate_batches, load_dataset
from fedlingua.models import load_backbone
from fedlingua.runtime import configure_threads, environment, onednn_fp32_matmuls
from fedlingua.training import build_workbench

RESULTS = Path(__file__).resolve().parent / "results"
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


def _steps(bench, data: EncodedSplit, *, steps: int, batch_size: int, pad_to: int | None):
    params = [p for p in bench.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    bench.model.train()
    times, shapes = [], []
    batches = list(iterate_batches(data, batch_size=batch_size, pad_id=bench.pad_id, shuffle=True))
    for i in range(steps + 2):
        batch = batches[i % len(batches)]
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if pad_to is not None and ids.shape[1] < pad_to:
            extra = pad_to - ids.shape[1]
            ids = torch.nn.functional.pad(ids, (0, extra), value=bench.pad_id)
            mask = torch.nn.functional.pad(mask, (0, extra), value=0)
        t0 = time.perf_counter()
        with bench.matmuls():
            with bench.autocast():
                out = bench.model(input_ids=ids, attention_mask=mask)
            loss = torch.nn.functional.cross_entropy(out.logits.float(), batch["labels"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
            shapes.append(ids)
    return times, shapes


def compile_rows(backbone, num_labels: int, data: EncodedSplit, args) -> dict:
    """Eager vs torch.compile'd encoder per precision (fresh inductor cache in a temp dir)."""
    import os
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        for precision in ("fp32", "fp32-onednn"):
            cfg = RunConfig.load(None, [f"model.precision={precision}"])
            bench = build_workbench(backbone, num_labels, cfg)
            eager, _ = _steps(
                bench, data, steps=args.steps, batch_size=args.batch_size, pad_to=None
            )
            torch._dynamo.reset()
            bench.model.get_base_model().encoder.compile(dynamic=True)
            t0 = time.perf_counter()
            _steps(bench, data, steps=0, batch_size=args.batch_size, pad_to=None)
            compile_s = time.perf_counter() - t0
            comp, _ = _steps(bench, data, steps=args.steps, batch_size=args.batch_size, pad_to=None)
            out[precision] = {
                "eager_step_s": statistics.median(eager),
                "compiled_step_s": statistics.median(comp),
                "compile_s": compile_s,
            }
            print("compile", precision, out[precision], flush=True)
            del bench
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile of the backbone encoder (minutes of compilation)",
    )
    args = ap.parse_args()
    threads = configure_threads(None)
    peak = {p: matmul_peak(p) for p in PRECISIONS}
    backbone = load_backbone("e5-small")
    if default_data_root() is not None:
        ds, lang, source = load_dataset("sib200", languages=["fra_Latn"]), "fra_Latn", "sib200"
    else:
        ds, lang, source = load_dataset("cldr", languages=["fr"]), "fr", "cldr"
    rows = ds.split(lang, "train")[:256]
    data = encode(backbone.tokenizer, rows, max_length=args.max_length, text_prefix="query: ")
    results = {}
    for method in ("prompt-encoder", "soft-prompt", "lora", "full"):
        for precision in PRECISIONS:
            cfg = RunConfig.load(None, [f"method.name={method}", f"model.precision={precision}"])
            bench = build_workbench(backbone, len(ds.labels), cfg)
            virtual = bench.method.virtual_tokens
            total = sum(p.numel() for p in backbone.encoder.encoder.parameters())
            trained = sum(
                p.numel()
                for n, p in bench.model.named_parameters()
                if p.requires_grad and "lora" in n
            )
            times, shapes = _steps(
                bench, data, steps=args.steps, batch_size=args.batch_size, pad_to=None
            )
            flops = [
                encoder_flops(backbone.encoder.config, s, virtual, method, trained / total)
                for s in shapes
            ]
            gflops = statistics.median(f / t / 1e9 for f, t in zip(flops, times, strict=True))
            results[f"{method}/{precision}"] = {
                "median_step_s": statistics.median(times),
                "samples_per_s": statistics.median(
                    s.shape[0] / t for s, t in zip(shapes, times, strict=True)
                ),
                "gflops": gflops,
                "fraction_of_peak": gflops / peak[precision],
            }
            print(method, precision, results[f"{method}/{precision}"], flush=True)
            del bench
    # defaults vs a plain fp32, pad-to-max-length baseline (prompt-encoder, same examples)
    speed = {}
    for label, precision, pad_to in (
        ("baseline fp32, pad to max", "fp32", args.max_length),
        ("dynamic padding fp32", "fp32", None),
        ("dynamic padding fp32-onednn (default)", "fp32-onednn", None),
        ("dynamic padding bf16", "bf16", None),
    ):
        cfg = RunConfig.load(None, [f"model.precision={precision}"])
        bench = build_workbench(backbone, len(ds.labels), cfg)
        times, shapes = _steps(
            bench, data, steps=args.steps, batch_size=args.batch_size, pad_to=pad_to
        )
        speed[label] = sum(s.shape[0] for s in shapes) / sum(times)
        del bench
    base = speed["baseline fp32, pad to max"]
    compiled = compile_rows(backbone, len(ds.labels), data, args) if args.compile else {}
    command = "python benchmarks/throughput.py " + " ".join(
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if v is not False
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Client-update throughput against this CPU's matrix-product peak",
        "",
        f"Command: `{command}`; torch threads {threads}; data {out['data']}; batch "
        f"{args.batch_size}; e5-small; {args.steps} measured steps per row (medians).",
        "",
        "Matrix-product peak (2048x2048) of each precision: "
        + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peak.items())
        + " (fp32-onednn: fp32 tensors, products through oneDNN; fp32 accuracy checked by "
        "`fedlingua.runtime.onednn_fp32_error`).",
        "",
        "| method / precision | median step (s) | samples/s | achieved GFLOP/s | of its peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, r in results.items():
        lines.append(
            f"| {key} | {r['median_step_s']:.3f} | {r['samples_per_s']:.1f} | {r['gflops']:.0f} | "
            f"{100 * r['fraction_of_peak']:.0f}% |"
        )
    lines += [
        "",
        "Speed of the prompt-encoder client update on the same examples:",
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
            "backbone encoder, prompt-encoder client update; compile time is the first "
            "two steps with an empty compilation cache:",
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
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
