"""Process-wide settings decided in one place: torch threads, the compute device and its
precision, progress bars, environment record, whether the Hugging Face hub may (offline
flags) and can (a short probe) be contacted.

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
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from urllib.parse import urlparse

import numpy as np
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
    resumed run draws exactly what an uninterrupted run would have drawn. The data layer
    seeds its `random.Random`s from strings instead (`data.sampling.rng_for`); the two
    schemes stay separate because merging them would change every split and partition.
    """
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def entropy_seed() -> np.ndarray:
    """256 bits from the OS: a numpy seed nobody can derive from a run's config (what DP
    noise is drawn from, unless a simulation asks for seeded noise)."""
    return np.frombuffer(os.urandom(32), dtype=np.uint32)


_TRUE = {"1", "ON", "YES", "TRUE"}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_offline_reason(*extra_vars: str) -> str | None:
    """Which variable switches the Hugging Face hub off (read now, not at import), or None.

    HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE always count; a caller adds its library's own
    flag (the data layer: HF_DATASETS_OFFLINE).
    """
    for var in ("HF_HUB_OFFLINE", *extra_vars, "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in _TRUE:
            return f"{var}={os.environ[var]} is set"
    return None


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Connect to the hub endpoint (or the HTTPS proxy) within `timeout`; None if it works.

    Without it, huggingface_hub and datasets retry an unreachable hub for tens of seconds.
    Behind a proxy the proxy is what must answer. The answer is kept per host for the
    process, so loading many models or configs probes once.
    """
    proxy = next((os.environ[v] for v in _PROXY_VARS if os.environ.get(v)), None)
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    return _probe(url.hostname or "huggingface.co", port, timeout)


@cache
def _probe(host: str, port: int, timeout: float) -> str | None:
    result: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as exc:
            result.append(f"cannot connect to {host}:{port} ({exc})")

    thread = threading.Thread(target=connect, daemon=True)  # getaddrinfo ignores timeouts
    thread.start()
    thread.join(timeout + 0.5)
    return result[0] if result else f"no answer from {host}:{port} within {timeout:.0f} s"


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


ONEDNN_MAX_ERROR = 1e-5  # fp32 products are ~1e-7 off; a true bf16 rounding is ~3e-3


@contextlib.contextmanager
def onednn_fp32_matmuls() -> Iterator[None]:
    """Route fp32 matrix products through oneDNN for the duration of the block.

    This is PyTorch's `torch.backends.mkldnn.matmul.fp32_precision = "bf16"` (oneDNN's
    "bf16 fpmath" mode). On this project's reference CPU (AVX-512 BF16, no AMX) the
    products keep fp32 accuracy (relative error 2.9e-7 against float64, plain fp32 2.1e-7)
    while a prompt-tuning client update runs 1.85x faster (benchmarks/results/
    throughput.md, precision_guard.md); `onednn_fp32_error` checks the accuracy on the
    CPU at hand before the mode is used (see `resolve_precision`).
    """
    knob = torch.backends.mkldnn.matmul
    old = knob.fp32_precision
    knob.fp32_precision = "bf16"
    try:
        yield
    finally:
        knob.fp32_precision = old


@cache
def onednn_fp32_error(n: int = 256) -> float:
    """Worst relative error (vs float64) of fp32 `matmul` and `linear` in the oneDNN mode."""
    if not torch.backends.mkldnn.is_available():
        return float("inf")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    bias = torch.randn(n, generator=g)
    with onednn_fp32_matmuls():
        got = [a @ b, torch.nn.functional.linear(a, b, bias)]
    ref = [
        a.double() @ b.double(),
        torch.nn.functional.linear(a.double(), b.double(), bias.double()),
    ]
    return max(float((x.double() - r).norm() / r.norm()) for x, r in zip(got, ref, strict=True))


PRECISIONS = ("fp32-onednn", "fp32", "bf16", "auto")  # what resolve_precision understands


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """The precision a run really uses on `device`.

    On CUDA: 'auto' becomes 'bf16' where the GPU has bf16 arithmetic, else 'fp32';
    'fp32-onednn' is a CPU mode (oneDNN) and becomes plain 'fp32' (TF32 would not keep
    fp32 accuracy, the very promise of that mode); 'bf16' autocasts the backbone to bf16
    and lets the remaining fp32 products use TF32 (`Workbench.matmuls`). On the CPU:
    'auto' becomes 'bf16' where this CPU multiplies bf16 clearly faster (AVX-512 BF16/AMX),
    else 'fp32'. 'fp32-onednn' stays only where oneDNN's products keep fp32 accuracy on
    this CPU (`onednn_fp32_error` <= 1e-5), else it falls back to plain 'fp32' with a
    warning. bf16 autocast covers the frozen backbone; trainable tensors, optimizer state,
    pooling and the loss stay fp32 (see benchmarks/results/precision_guard.md).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    if torch.device(device).type == "cuda":
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "fp32" if precision == "fp32-onednn" else precision
    if precision == "fp32-onednn":
        error = onednn_fp32_error()
        if error <= ONEDNN_MAX_ERROR:
            return precision
        warnings.warn(
            f"model.precision=fp32-onednn: oneDNN's fp32 products are {error:.1e} off on "
            "this CPU (more than fp32 rounding); using plain fp32",
            RuntimeWarning,
            stacklevel=2,
        )
        return "fp32"
    if precision != "auto":
        return precision
    return "bf16" if bf16_speedup() >= 1.5 else "fp32"


@contextlib.contextmanager
def cuda_tf32_matmuls() -> Iterator[None]:
    """Let CUDA fp32 matrix products (and cuDNN convolutions) use TF32 inside the block."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device of `model.device`: 'auto' is CUDA when available, else the CPU.

    Any torch device string is taken (the tests use 'meta'); CUDA must exist here.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(f"device {name!r}: this machine has {count} CUDA device(s)")
    return device


def device_name(device: torch.device | str) -> str:
    """What a run's device is, for environment.json: the GPU's name, or the CPU model."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return _cpu_model()
    return device.type


@cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
