"""Process-wide settings decided in one place: torch threads, progress bars, environment record.

Threads: a single training process uses every core; when several processes
compute at once (Flower ClientApps, SuperNodes, parallel tests) each must use
one thread, because two torch threads collapse when another process holds a
core. `configure_threads` is the only place fedlingua sets this.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from functools import cache
from importlib import metadata

import torch


def configure_threads(threads: int | None = None) -> int:
    """Set torch intra-op threads: explicit value, else $FEDLINGUA_THREADS, else all cores."""
    if threads is None:
        env = os.environ.get("FEDLINGUA_THREADS")
        threads = int(env) if env else (os.cpu_count() or 1)
    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def progress_enabled(requested: bool | None = None) -> bool:
    """Progress bars only on a terminal and never under CI, unless explicitly requested."""
    if requested is not None:
        return requested
    return sys.stderr.isatty() and not os.environ.get("CI")


def environment() -> dict:
    """Versions and machine facts recorded with every run."""
    packages = {}
    for name in ("fedlingua", "torch", "transformers", "peft", "flwr", "numpy", "tokenizers"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "packages": packages,
    }


def derive_seed(*parts: object) -> int:
    """A 32-bit seed from a run seed and labels (round, client...): the same in every process.

    Everything random in a round derives from (run seed, round, client), so a
    resumed run draws exactly what an uninterrupted run would have drawn.
    """
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@contextlib.contextmanager
def flower_log_level(level: int) -> Iterator[None]:
    """Temporarily set Flower's logger level (its per-round INFO lines flood a simulation)."""
    logger = logging.getLogger("flwr")
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


@cache
def bf16_speedup(n: int = 768, repeats: int = 3) -> float:
    """How much faster a bf16 matrix product is than fp32 on this CPU (measured once)."""

    def best(dtype: torch.dtype) -> float:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(torch.float32) / best(torch.bfloat16)


def resolve_precision(precision: str) -> str:
    """'auto' becomes 'bf16' where this CPU multiplies bf16 clearly faster (AVX-512 BF16/AMX),
    else 'fp32'. bf16 autocast covers the frozen backbone; trainable tensors, optimizer state,
    pooling and the loss stay fp32 (see benchmarks/results/precision_guard.md)."""
    if precision != "auto":
        return precision
    return "bf16" if bf16_speedup() >= 1.5 else "fp32"
