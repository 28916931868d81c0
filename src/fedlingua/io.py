"""Atomic file writing: a crash never leaves a half-written file behind.

Every file fedlingua writes (configs, metrics, tensors, reports, the model
cache) goes through a temporary file in the same folder and an `os.replace`.
Tensors are stored as safetensors and everything else as JSON/TOML; nothing is
ever pickled. Reading back a file that is truncated or corrupted raises
`CorruptFileError` naming the file (and line/column where there is one).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch


class CorruptFileError(ValueError):
    """A file fedlingua wrote cannot be read back: truncated, corrupted or edited by hand."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)


def _umask() -> int:
    """The process's umask, read without loosening it (other threads may create files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # the strictest mask for the instant it takes to read the old one
    os.umask(mask)
    return mask


def _atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() would give: the umask decides
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""

    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return _atomic(path, w)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _loads(text: str, path: str | os.PathLike, line: int | None = None) -> Any:
    where = f"line {line}, " if line is not None else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where += f"line {exc.lineno}, " if line is None else ""
        raise CorruptFileError(
            path, f"{where}column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit integer, nesting too deep
        raise CorruptFileError(path, f"{where}invalid JSON ({type(exc).__name__})") from None


def _read_text(path: str | os.PathLike) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"not UTF-8 text (byte {exc.start})") from None


def read_json(path: str | os.PathLike) -> Any:
    return _loads(_read_text(path), path)


def append_jsonl(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Append one JSON line by rewriting the file atomically (metrics files are small)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    return write_text(path, old + json.dumps(record, default=str) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    lines = enumerate(_read_text(path).splitlines(), start=1)
    return [_loads(line, path, number) for number, line in lines if line]


CHECKSUM_KEY = "fedlingua.sha256"


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (in name order)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def save_tensors(
    path: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
    *,
    checksum: bool = False,
) -> Path:
    """Save tensors as safetensors atomically (contiguous CPU copies).

    `checksum` stores a digest that `load_tensors` verifies: safetensors itself has none,
    so a flipped byte in a tensor name or value would otherwise load as valid data.
    """
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = dict(metadata or {}) | ({CHECKSUM_KEY: tensors_digest(flat)} if checksum else {})
    return _atomic(path, lambda tmp: save_file(flat, tmp, metadata=meta))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a damaged one (or a checksum mismatch) is a CorruptFileError."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            expected = (fh.metadata() or {}).get(CHECKSUM_KEY)
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    except OSError:  # a missing file is not a corrupt one
        raise
    except Exception as exc:  # SafetensorError (truncated, bad header), unknown dtypes...
        raise CorruptFileError(path, f"unreadable safetensors ({exc})") from exc
    if expected is not None and tensors_digest(tensors) != expected:
        raise CorruptFileError(path, "checksum mismatch: the file changed after it was written")
    return tensors
