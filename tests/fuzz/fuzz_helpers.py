"""Shared pieces of the fuzz tests: a per-boundary count of inputs tried, and the check that
an error is the project's own and names its file.

benchmarks/fuzz.py reads `TRIED` after a run to report how many inputs each boundary saw.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TRIED: Counter[str] = Counter()


def tried(boundary: str) -> None:
    """Count one generated input against `boundary` (readers, labels, config, ...)."""
    TRIED[boundary] += 1


def assert_names_file(exc: BaseException, path: str | Path) -> None:
    """The message names the file: the path itself, or at least its file name."""
    message = str(exc)
    assert str(path) in message or Path(path).name in message, message
