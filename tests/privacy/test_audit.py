"""The membership-inference audit: its metrics, its member/non-member split, its power."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest

from fedlingua.cli import main
from fedlingua.engine import run
from fedlingua.experiment import build
from fedlingua.privacy.audit import (
    advantage,
    attack_metrics,
    audit_run,
    roc_auc,
    split_members,
    tpr_at_fpr,
)


# ---- metrics ---------------------------------------------------------------------------------
def _brute_auc(m, n) -> float:
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(m, n))
    return wins / (len(m) * len(n))


def test_auc_is_the_pairwise_win_rate_with_ties_counted_half():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.integers(0, 6, size=rng.integers(1, 15)).astype(float)  # many ties
        n = rng.integers(0, 6, size=rng.integers(1, 15)).astype(float)
        assert roc_auc(m, n) == pytest.approx(_brute_auc(m, n))
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5


def test_tpr_at_low_fpr_allows_only_that_many_false_positives():
    non = np.arange(100, dtype=float)  # 0..99
    members = np.array([98.5, 99.5, 150.0, 10.0])
    # 1% of 100 non-members = 1 false positive: threshold just below 99 -> scores > 98
    assert tpr_at_fpr(members, non, 0.01) == pytest.approx(3 / 4)
    # 0 false positives allowed when FPR < 1/n: only scores above the best non-member
    assert tpr_at_fpr(members, non, 0.001) == pytest.approx(2 / 4)
    assert tpr_at_fpr(members, non, 1.0) == 1.0
    assert advantage(np.array([5.0, 6.0]), np.array([1.0, 2.0])) == 1.0
    assert advantage(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0


def test_attack_metrics_on_separable_and_identical_scores():
    rng = np.random.default_rng(1)
    same = rng.normal(size=400)
    out = attack_metrics(same[:200], same[200:], bootstrap=200)
    assert 0.4 < out["auc"] < 0.6 and out["auc_ci95"][0] < 0.5 < out["auc_ci95"][1]
    sep = attack_metrics(rng.normal(3, 1, 200), rng.normal(0, 1, 200), bootstrap=200)
    assert sep["auc"] > 0.95 and sep["tpr_at_1pct_fpr"] > 0.3 and sep["auc_ci95"][0] > 0.9


# ---- members and non-members -----------------------------------------------------------------
def test_non_members_are_held_out_label_matched_and_never_a_member_anywhere(
    tmp_path, tiny_backbone, tiny_config
):
    cfg = tiny_config(tmp_path)
    exp = build(cfg, backbone=tiny_backbone)
    split = split_members(exp, cfg.seed)
    assert list(split) == ["fr", "sw", "lg"]
    ds = exp.dataset
    member_positions: set[int] = set()
    for lang, (members, _, _) in split.items():
        train = ds.split(lang, "train")
        index = {id(ex): i for i, ex in enumerate(train)}
        member_positions |= {index[id(ex)] for ex in members}
    for lang, (members, non_members, provenance) in split.items():
        assert len(members) == 48
        assert Counter(ex.label for ex in non_members) == Counter(ex.label for ex in members)
        assert provenance["short"] == 0
        member_ids = {id(ex) for ex in members}
        assert not member_ids & {id(ex) for ex in non_members}
        train = ds.split(lang, "train")
        index = {id(ex): i for i, ex in enumerate(train)}
        # parallel corpora: no non-member sits at a position that is a member in any language
        assert not {index[id(ex)] for ex in non_members if id(ex) in index} & member_positions


# ---- the audit of a run ----------------------------------------------------------------------
def _memorizing_config(tiny_config, tmp_path, lr: float, name: str):
    cfg = tiny_config(
        tmp_path,
        name=name,
        paradigm="centralized",
        method__name="full",
        train__lr=lr,
        train__local_epochs=30,
        federation__rounds=2,
    )
    cfg.data.languages = ["fr", "sw"]
    cfg.data.max_train_per_client = 16
    cfg.method.freeze_word_embeddings = False
    cfg.model.dropout = 0.0
    return cfg


def test_audit_detects_memorization_and_not_an_untrained_model(
    tmp_path, tiny_backbone, tiny_config
):
    quiet = dict(backbone=tiny_backbone, log=lambda s: None)
    trained = run(_memorizing_config(tiny_config, tmp_path, 3e-3, "memorized"), **quiet)
    untrained = run(_memorizing_config(tiny_config, tmp_path, 1e-9, "untrained"), **quiet)
    hot = audit_run(trained["run_dir"], bootstrap=200, **quiet)
    cold = audit_run(untrained["run_dir"], bootstrap=200, **quiet)
    assert hot["overall"]["auc"] > 0.75 and hot["overall"]["auc_ci95"][0] > 0.55, hot["overall"]
    assert 0.3 < cold["overall"]["auc"] < 0.7, cold["overall"]
    assert hot["overall"]["member_loss_mean"] < hot["overall"]["non_member_loss_mean"]
    assert set(hot["languages"]) == {"fr", "sw"}
    for scores in hot["languages"].values():
        assert scores["members"] == scores["non_members"] == 16
        assert scores["model"] == "pooled"
    saved = json.loads((tmp_path / "memorized" / "audit.json").read_text())
    assert saved["overall"]["auc"] == pytest.approx(hot["overall"]["auc"])


def test_monolingual_languages_are_scored_by_their_own_model(tmp_path, tiny_backbone, tiny_config):
    cfg = tiny_config(tmp_path, name="mono", paradigm="monolingual", federation__rounds=1)
    run(cfg, backbone=tiny_backbone, log=lambda s: None)
    out = audit_run(tmp_path / "mono", backbone=tiny_backbone, bootstrap=0, log=lambda s: None)
    assert {lang: s["model"] for lang, s in out["languages"].items()} == {
        "fr": "fr",
        "sw": "sw",
        "lg": "lg",
    }
    assert out["overall"]["members"] == 3 * 48


def test_cli_audit_writes_audit_json_and_rejects_a_non_run_folder(tmp_path, tiny_config, capsys):
    cfg = tiny_config(tmp_path, name="cli", federation__rounds=1)
    cfg.model.name = "tiny"  # rebuilt by name in the audit's fresh model load
    run(cfg, log=lambda s: None)
    assert main(["audit", str(tmp_path / "cli"), "--bootstrap", "50"]) == 0
    assert (tmp_path / "cli" / "audit.json").exists()
    assert "overall: AUC" in capsys.readouterr().out
    assert main(["audit", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
