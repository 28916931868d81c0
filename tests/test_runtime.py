"""Process-wide settings: threads, precision choice, seeds."""

from __future__ import annotations

import pytest
import torch

from fedlingua import runtime
from fedlingua.runtime import (
    ONEDNN_MAX_ERROR,
    bf16_speedup,
    configure_threads,
    derive_seed,
    onednn_fp32_error,
    onednn_fp32_matmuls,
    resolve_precision,
)


def test_explicit_precisions_are_kept_and_auto_follows_the_measurement():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if bf16_speedup() >= 1.5 else "fp32")
    expected = "fp32-onednn" if onednn_fp32_error() <= ONEDNN_MAX_ERROR else "fp32"
    assert resolve_precision("fp32-onednn") == expected


def test_onednn_mode_keeps_fp32_accuracy_and_is_restored_after_the_block():
    knob = torch.backends.mkldnn.matmul
    before = knob.fp32_precision
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(64, 96, generator=g), torch.randn(32, 96, generator=g)
    with onednn_fp32_matmuls():
        assert knob.fp32_precision == "bf16"
        y = torch.nn.functional.linear(x, w)
    assert knob.fp32_precision == before
    exact = torch.nn.functional.linear(x.double(), w.double())
    error = float((y.double() - exact).norm() / exact.norm())
    if onednn_fp32_error() <= ONEDNN_MAX_ERROR:  # where the mode is used, it is fp32-accurate
        assert error <= ONEDNN_MAX_ERROR
    bf16_error = float(
        (torch.nn.functional.linear(x.bfloat16(), w.bfloat16()).double() - exact).norm()
        / exact.norm()
    )
    assert bf16_error > 10 * ONEDNN_MAX_ERROR  # the check can tell bf16 rounding apart


def test_onednn_falls_back_to_plain_fp32_where_it_loses_accuracy(monkeypatch):
    monkeypatch.setattr(runtime, "onednn_fp32_error", lambda: 3e-3)  # a bf16-rounding CPU
    with pytest.warns(RuntimeWarning, match="using plain fp32"):
        assert resolve_precision("fp32-onednn") == "fp32"


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
