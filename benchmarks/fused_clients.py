"""Fused clients: round wall time and client updates per second for K = 1, 2, 4, ... .

One experiment (e5-small by default, SIB-200 when the data root is there, else CLDR) with
`--clients` clients, all sampled every round, each taking `--steps` local steps of
`--batch-size` rows. For every K the same federation (built by the engine,
`build_federations`) runs one discarded warm-up round and `--rounds` measured rounds,
`Federation.step` timed as a whole (server side included). Reported per K: median
round wall time, client updates per second, peak memory during that K's rounds (CPU:
the process's sampled resident set size, which allocator caches keep from earlier,
smaller K, so it shows a K's own need only where it exceeds theirs; CUDA:
`max_memory_allocated`, reset per K), and the achieved GFLOP/s of
the encoder's matrix products (useful work: each client's own rows, not the padding a
fused batch adds) next to the measured GFLOP/s of the encoder's dense GEMM at the
M (= rows x tokens) of one step of K fused clients — the reason fusing can or cannot
help on a machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import threading
import time
from pathlib import Path

import torch
from harness import RESULTS, write_results
from throughput import encoder_flops

from fedlingua.config import RunConfig
from fedlingua.data import default_data_root
from fedlingua.engine.federations import build_federations, simulated_coordinator
from fedlingua.experiment import build
from fedlingua.runtime import configure_threads, device_name, environment, flower_log_level

SIB = ["fra_Latn", "swh_Latn", "hau_Latn", "yor_Latn"]


def _config(args) -> RunConfig:
    cfg = RunConfig()
    cfg.model.name = args.model
    cfg.model.device = args.device
    if args.precision:
        cfg.model.precision = args.precision
    cfg.method.name = args.method
    on_disk = default_data_root() is not None
    cfg.data.source = "sib200" if on_disk else "cldr"
    cfg.data.languages = SIB if on_disk else ["fr", "sw", "ha", "yo"]
    cfg.data.clients_per_language = max(1, args.clients // len(cfg.data.languages))
    cfg.data.max_train_per_client = args.steps * args.batch_size
    cfg.data.max_eval_per_language = 8
    cfg.data.max_length = args.max_length
    cfg.train.batch_size = args.batch_size
    cfg.train.local_steps = args.steps
    return cfg.validate()


class PeakMemory:
    """Peak memory during a block (bytes): resident set size, or CUDA allocations."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def gemm_gflops(m: int, k: int, n: int, bench, repeats: int = 5) -> float:
    """GFLOP/s of one [m, k] @ [k, n] product in the workbench's precision mode."""
    a = torch.randn(m, k, device=bench.device)
    b = torch.randn(k, n, device=bench.device)
    times = []
    with bench.matmuls(), bench.autocast():
        for i in range(repeats + 1):
            if bench.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            a @ b
            if bench.device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(times) / 1e9


def sweep_k(exp, k: int, args) -> dict:
    """Warm-up round, then `args.rounds` timed rounds of the one federation with fuse K."""
    exp.cfg.federation.fuse_clients = k
    (fed,) = build_federations(simulated_coordinator(exp)).values()
    times = []
    with PeakMemory(exp.bench.device) as memory, flower_log_level(logging.WARNING):
        fed.step(1)  # warm-up
        for rnd in range(2, 2 + args.rounds):
            t0 = time.perf_counter()
            outcome = fed.step(rnd)
            times.append(time.perf_counter() - t0)
            assert len(outcome.succeeded) == len(exp.clients), outcome.failed
    round_s = statistics.median(times)
    flops = _round_flops(exp, args)
    enc = exp.backbone.encoder.config
    virtual = exp.bench.method.virtual_tokens
    m = k * args.batch_size * (_mean_tokens(exp) + virtual)
    return {
        "k": k,
        "round_s": round_s,
        "client_updates_per_s": len(exp.clients) / round_s,
        "peak_memory_mb": memory.peak / 2**20,
        "achieved_gflops": flops / round_s / 1e9,
        "gemm_m": m,
        "gemm_ffn_gflops": gemm_gflops(m, enc.hidden_size, enc.intermediate_size, exp.bench),
    }


GEMMS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def op_profile(exp, k: int, args) -> dict:
    """Where one fused step of `k` clients spends its op time (torch profiler, self time):
    the share in GEMMs, the GFLOP/s inside them, and the five costliest ops."""
    from torch.profiler import ProfilerActivity, profile

    from fedlingua.fused import fused_local_update

    bench = exp.bench
    datasets = [exp.train[c.client_id] for c in exp.clients[:k]]
    states = [bench.get_state() for _ in datasets]
    kw = dict(epochs=1, max_steps=1, batch_size=args.batch_size, lr=1e-2)
    fused_local_update(bench, states, datasets, list(range(k)), **kw)  # warm-up
    cuda = bench.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, with_flops=True) as prof:
        fused_local_update(bench, states, datasets, list(range(k)), **kw)
    events = [e for e in prof.key_averages() if e.key != "ProfilerStep*"]

    def self_us(e) -> float:
        return e.self_device_time_total if cuda else e.self_cpu_time_total

    total = sum(self_us(e) for e in events)
    gemm_us = sum(self_us(e) for e in events if e.key in GEMMS)
    gemm_flops = sum(e.flops or 0 for e in events if e.key in GEMMS)
    top = sorted(events, key=self_us, reverse=True)[:5]
    return {
        "k": k,
        "step_ms": total / 1e3,
        "gemm_share": gemm_us / total,
        "gemm_gflops": gemm_flops / max(gemm_us, 1e-9) / 1e3,
        "top_ops": [[e.key, self_us(e) / total] for e in top],
    }


def _mean_tokens(exp) -> int:
    lengths = [n for split in exp.train.values() for n in split.lengths()]
    return round(sum(lengths) / len(lengths))


def _round_flops(exp, args) -> float:
    """Encoder FLOPs of one round's useful work: every client's steps at the mean length."""
    batch = torch.zeros(args.batch_size, _mean_tokens(exp), dtype=torch.long)
    method, virtual = exp.bench.method.name, exp.bench.method.virtual_tokens
    per_step = encoder_flops(exp.backbone.encoder.config, batch, virtual, method, 0.0)
    return per_step * args.steps * len(exp.clients)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="1,2,4,8,16", help="fused clients per step to try")
    ap.add_argument("--clients", type=int, default=16, help="clients (all sampled each round)")
    ap.add_argument("--steps", type=int, default=2, help="local steps per client update")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2, help="measured rounds per K")
    ap.add_argument("--method", default="prompt-encoder")
    ap.add_argument("--model", default="e5-small", help="model.name (a folder works too)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="", help="model.precision (default: the config's)")
    ap.add_argument("--name", default="fused_clients", help="results file name")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument(
        "--report", type=Path, help="only rebuild the .md of this results JSON (no run)"
    )
    args = ap.parse_args()
    if args.report:
        out = json.loads(args.report.read_text())
        write_results(args.report.stem, out, report(out), args.report.parent)
        return
    threads = configure_threads(None)
    exp = build(_config(args))
    ks = [int(k) for k in args.ks.split(",")]
    rows = [sweep_k(exp, k, args) for k in ks]
    profiles = [op_profile(exp, k, args) for k in sorted({ks[0], min(8, ks[-1])})]
    command = "python benchmarks/fused_clients.py " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k not in ("results_dir", "report") and v != ""
    )
    out = {
        "command": command,
        "threads": threads,
        "device": str(exp.bench.device),
        "device_name": device_name(exp.bench.device),
        "precision": exp.bench.precision,
        "data": f"{exp.cfg.data.source} {exp.cfg.data.languages}, {len(exp.clients)} clients, "
        f"mean {_mean_tokens(exp)} tokens + {exp.bench.method.virtual_tokens} virtual",
        "rows": rows,
        "profiles": profiles,
        "environment": environment(),
    }
    write_results(args.name, out, report(out), args.results_dir)


def report(out: dict) -> list[str]:
    base = out["rows"][0]["client_updates_per_s"]
    lines = [
        f"# Fused clients on {out['device_name']} ({out['device']}, {out['precision']})",
        "",
        f"Command: `{out['command']}`; torch threads {out['threads']}; data {out['data']}.",
        "",
        "| K | round (s) | client updates/s | speed-up | peak memory (MB) | achieved GFLOP/s "
        "| GEMM M | FFN GEMM GFLOP/s at that M |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in out["rows"]:
        lines.append(
            f"| {r['k']} | {r['round_s']:.2f} | {r['client_updates_per_s']:.2f} | "
            f"{r['client_updates_per_s'] / base:.2f}x | {r['peak_memory_mb']:.0f} | "
            f"{r['achieved_gflops']:.1f} | {r['gemm_m']} | {r['gemm_ffn_gflops']:.1f} |"
        )
    lines += [
        "",
        "Achieved GFLOP/s counts the encoder's matrix products of every client's own rows "
        "(forward and input gradients; the backbone is frozen), at the mean length. The last "
        "column is a lone [M, hidden] x [hidden, intermediate] product in the same precision "
        "mode, M being the rows x tokens of one fused step: fusing pays where a bigger M runs "
        "the GEMM faster (GPUs, many cores); where one client's M already reaches the GEMM's "
        "speed, K clients take K times as long either way, and the padding to the widest "
        "batch of a step is extra work.",
        "",
        "Where the op time of one fused step goes (torch profiler, self time of each op):",
        "",
        "| K | op time (ms) | in GEMMs | GFLOP/s inside GEMMs | costliest ops (share) |",
        "|---:|---:|---:|---:|---|",
    ]
    for p in out["profiles"]:
        top = ", ".join(f"{name} {100 * share:.0f}%" for name, share in p["top_ops"])
        lines.append(
            f"| {p['k']} | {p['step_ms']:.0f} | {100 * p['gemm_share']:.0f}% | "
            f"{p['gemm_gflops']:.0f} | {top} |"
        )
    return lines


if __name__ == "__main__":
    main()
