"""Process-wide settings: threads, precision choice, seeds."""

from __future__ import annotations

import torch

from fedlingua.runtime import bf16_speedup, configure_threads, derive_seed, resolve_precision


def test_explicit_precisions_are_kept_and_auto_follows_the_measurement():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if bf16_speedup() >= 1.5 else "fp32")


def test_threads_come_from_the_argument_or_the_environment(monkeypatch):
    old = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("FEDLINGUA_THREADS", "1")
        assert configure_threads(None) == 1
    finally:
        torch.set_num_threads(old)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, 1, "fr") == derive_seed(0, 1, "fr")
    assert len({derive_seed(0, r, c) for r in range(5) for c in ("fr", "sw")}) == 10
