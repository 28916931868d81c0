"""The config's Literal choices name exactly what the code can build (no stale copies)."""

from __future__ import annotations

import importlib

import pytest

from fedlingua.config import DP_STRATEGIES, METHODS, PRECISIONS, STRATEGIES


def test_method_choices_are_the_method_registry():
    from fedlingua.methods import REGISTRY

    assert sorted(METHODS) == sorted(REGISTRY)


@pytest.mark.parametrize(
    ("module", "name", "choices", "missing"),
    [
        (
            "fedlingua.runtime",
            "PRECISIONS",
            PRECISIONS,
            "fedlingua.runtime keeps no list of precisions (resolve_precision branches)",
        ),
        (
            "fedlingua.federation.strategies",
            "STRATEGIES",
            STRATEGIES,
            "fedlingua.federation.strategies has no STRATEGIES registry yet",
        ),
    ],
)
def test_choices_are_the_modules_own_list(module, name, choices, missing):
    known = getattr(importlib.import_module(module), name, None)
    if known is None:
        pytest.skip(missing)
    assert sorted(choices) == sorted(known)


def test_dp_strategies_are_strategies():
    assert set(DP_STRATEGIES) <= set(STRATEGIES)
