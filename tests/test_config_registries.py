"""The config's Literal choices name exactly what the code can build (no stale copies)."""

from __future__ import annotations

import importlib

import pytest

from fedlingua.config import DP_STRATEGIES, METHODS, PRECISIONS, STRATEGIES


def test_method_choices_are_the_method_registry():
    from fedlingua.methods import REGISTRY

    assert sorted(METHODS) == sorted(REGISTRY)


@pytest.mark.parametrize(
    ("module", "choices"),
    [("fedlingua.runtime", PRECISIONS), ("fedlingua.federation.strategies", STRATEGIES)],
)
def test_choices_are_the_modules_own_list(module, choices):
    """model.precision and federation.strategy name what runtime / strategies build."""
    known = importlib.import_module(module)
    name = "PRECISIONS" if module.endswith("runtime") else "STRATEGIES"
    assert sorted(choices) == sorted(getattr(known, name))


def test_dp_strategies_are_strategies():
    assert set(DP_STRATEGIES) <= set(STRATEGIES)
