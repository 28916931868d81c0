"""Choosing among several models for a language no model serves: on dev, never on test."""

from __future__ import annotations

import pytest

from fedlingua.evaluation import pick_on_dev

# two monolingual models scored on two languages neither serves; on "xx" the model best
# on dev (fr) is the worse one on test, as happens with small dev sets
DEV = {"fr": {"xx": 0.9, "yy": 0.4}, "sw": {"xx": 0.5, "yy": 0.4}}
TEST = {"fr": {"xx": 0.3, "yy": 0.6}, "sw": {"xx": 0.8, "yy": 0.2}}


def test_the_pick_follows_dev_not_test():
    pick = pick_on_dev(DEV, TEST)
    assert pick["xx"]["models"] == ["fr"]
    assert pick["xx"]["dev"] == 0.9
    assert pick["xx"]["test"] == 0.3  # fr's test score, though sw scores 0.8 there
    # the references: the average transfer and the oracle (chosen on test itself)
    assert pick["xx"]["mean_test"] == pytest.approx(0.55)
    assert (pick["xx"]["oracle_model"], pick["xx"]["oracle_test"]) == ("sw", 0.8)


def test_models_tied_on_dev_share_the_pick():
    pick = pick_on_dev(DEV, TEST)["yy"]
    assert pick["models"] == ["fr", "sw"]
    # the expectation of choosing one of them at random, not the better one on test
    assert pick["test"] == pytest.approx(0.4)
    assert pick["oracle_test"] == 0.6


def test_only_the_picked_models_need_test_scores():
    assert pick_on_dev(DEV) == {
        "xx": {"models": ["fr"], "dev": 0.9},
        "yy": {"models": ["fr", "sw"], "dev": 0.4},
    }
    partial = {"fr": {"xx": 0.3, "yy": 0.6}, "sw": {"yy": 0.2}}
    pick = pick_on_dev(DEV, partial)
    assert pick["xx"]["test"] == 0.3
    assert "mean_test" not in pick["xx"]  # references need every model's test score
    assert pick["yy"]["mean_test"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="sw"):  # a picked model without its test score
        pick_on_dev(DEV, {"fr": TEST["fr"]})
