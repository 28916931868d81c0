"""Leakage audit of a run: a loss-based membership-inference attack on its final model(s).

`fedlingua audit <run-dir>` rebuilds the run's data exactly as the run did (same config,
same seed), then for every client language compares the model's per-example loss on

* members      -- the training examples the clients of that language held, and
* non-members  -- held-out examples of the same language, never trained on: unused rows
                  of the train split (same distribution as the members), label-matched to
                  the members, topped up from the test split when a class runs short.
                  Rows at positions used as members in *any* language are excluded too:
                  in parallel corpora (SIB-200) row i is the same sentence in every
                  language, and a translation of a member is not a clean non-member.

The attack (Yeom et al. 2018) predicts "member" when the loss is below a threshold; over
all thresholds it yields ROC-AUC (0.5 = no leakage) and the TPR at a fixed low FPR (1%
and 10%; chance is the FPR itself), the operating point Carlini et al. (2022) argue
matters. Each language is scored by the model that serves it: the global model
(federated), the pooled model (centralized) or the language's own model (monolingual).
"overall" pools all languages' examples. AUC comes with a 95% bootstrap interval.

A loss threshold is the simplest attack: its AUC is a lower bound on what a stronger
attacker (per-example calibrated, e.g. LiRA) could extract, not an upper bound.
The result is written to `<run-dir>/audit.json`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit, Example, encode
from fedlingua.data.sampling import by_class, rng_for
from fedlingua.io import write_json
from fedlingua.models import Backbone
from fedlingua.report import RunDir
from fedlingua.runtime import configure_threads
from fedlingua.training import State, Workbench, eval_logits

FPRS = (0.01, 0.1)


# ---- attack metrics --------------------------------------------------------------------------
def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(uniq) < len(values):  # average the ranks within each tie group
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def roc_auc(member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    """P(member score > non-member score) + P(tie)/2 (Mann-Whitney); higher score = member."""
    m, n = len(member_scores), len(non_member_scores)
    if m == 0 or n == 0:
        return float("nan")
    ranks = _ranks(np.concatenate([member_scores, non_member_scores]))
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def tpr_at_fpr(member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float) -> float:
    """Highest TPR of a threshold rule 'score > t' whose FPR is at most `fpr`."""
    n = len(non_member_scores)
    if n == 0 or len(member_scores) == 0:
        return float("nan")
    allowed = int(np.floor(fpr * n + 1e-9))  # false positives allowed
    ordered = np.sort(non_member_scores)[::-1]
    if allowed >= n:
        return 1.0
    threshold = ordered[allowed]  # strictly above this: at most `allowed` non-members
    return float(np.mean(member_scores > threshold))


def advantage(member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    """Membership advantage max_t (TPR - FPR) of the threshold attack (Yeom et al.)."""
    scores = np.concatenate([member_scores, non_member_scores])
    is_member = np.concatenate([np.ones(len(member_scores)), np.zeros(len(non_member_scores))])
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(is_member[order]) / max(len(member_scores), 1)
    fp = np.cumsum(1 - is_member[order]) / max(len(non_member_scores), 1)
    keep = np.r_[scores[order][1:] != scores[order][:-1], True]  # thresholds between values
    return float(max(0.0, np.max((tp - fp)[keep])))


def attack_metrics(
    member_scores: np.ndarray,
    non_member_scores: np.ndarray,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    member_scores = np.asarray(member_scores, dtype=np.float64)
    non_member_scores = np.asarray(non_member_scores, dtype=np.float64)
    out = {
        "members": len(member_scores),
        "non_members": len(non_member_scores),
        "auc": roc_auc(member_scores, non_member_scores),
        **{
            f"tpr_at_{round(100 * f)}pct_fpr": tpr_at_fpr(member_scores, non_member_scores, f)
            for f in FPRS
        },
        "advantage": advantage(member_scores, non_member_scores),
        "member_loss_mean": float(-member_scores.mean()) if len(member_scores) else None,
        "non_member_loss_mean": float(-non_member_scores.mean())
        if len(non_member_scores)
        else None,
    }
    if bootstrap and len(member_scores) and len(non_member_scores):
        rng = np.random.default_rng(seed)
        aucs = [
            roc_auc(
                rng.choice(member_scores, len(member_scores)),
                rng.choice(non_member_scores, len(non_member_scores)),
            )
            for _ in range(bootstrap)
        ]
        lo, hi = np.percentile(aucs, [2.5, 97.5])
        out["auc_ci95"] = [float(lo), float(hi)]
    return out


# ---- data: members and label-matched non-members -------------------------------------------
def _positions(split: list[Example], chosen: list[Example]) -> set[int]:
    where = {id(ex): i for i, ex in enumerate(split)}
    return {where[id(ex)] for ex in chosen if id(ex) in where}


def split_members(exp, seed: int) -> dict[str, tuple[list[Example], list[Example], dict]]:
    """lang -> (members, label-matched non-members, provenance counts)."""
    ds = exp.dataset
    langs = list(dict.fromkeys(c.lang for c in exp.clients))
    members = {
        lang: [ex for c in exp.clients if c.lang == lang for ex in c.train] for lang in langs
    }
    used: set[int] = set()
    for lang in langs:
        used |= _positions(ds.split(lang, "train"), members[lang])
    out = {}
    for lang in langs:
        train = ds.split(lang, "train")
        own = _positions(train, members[lang])
        pool = [ex for i, ex in enumerate(train) if i not in used and i not in own]
        test = list(ds.split(lang, "test"))
        want = {y: len(idx) for y, idx in by_class([ex.label for ex in members[lang]]).items()}
        rng = rng_for("audit-non-members", seed, lang)
        chosen: list[Example] = []
        counts = {"unused_train": 0, "test": 0, "short": 0}
        pool_by = by_class([ex.label for ex in pool])
        test_by = by_class([ex.label for ex in test])
        for y, need in want.items():
            idx = list(pool_by.get(y, []))
            rng.shuffle(idx)
            take = [pool[i] for i in idx[:need]]
            counts["unused_train"] += len(take)
            if len(take) < need:
                extra = list(test_by.get(y, []))
                rng.shuffle(extra)
                top_up = [test[i] for i in extra[: need - len(take)]]
                counts["test"] += len(top_up)
                take += top_up
            counts["short"] += need - len(take)
            chosen += take
        out[lang] = (members[lang], chosen, counts)
    return out


# ---- per-example losses ----------------------------------------------------------------------
def example_losses(
    bench: Workbench, state: State, data: EncodedSplit, batch_size: int
) -> np.ndarray:
    """Cross-entropy of every row of `data` under `state` (eval mode), in row order."""
    losses = np.empty(len(data), dtype=np.float64)
    for index, logits, labels in eval_logits(bench, state, data, batch_size):
        losses[index] = nn.functional.cross_entropy(logits, labels, reduction="none").numpy()
    return losses


def _member_scores(exp, state: State, rows: list[Example]) -> np.ndarray:
    """The attack's score per example: its negated loss (higher = more likely a member)."""
    tok, prefix = exp.backbone.tokenizer, exp.backbone.text_prefix
    enc = encode(tok, rows, max_length=exp.max_length, text_prefix=prefix)
    return -example_losses(exp.bench, state, enc, exp.cfg.train.eval_batch_size)


# ---- the audit of a run ----------------------------------------------------------------------
def audit_run(
    run_dir: str | Path,
    *,
    which: str = "final",
    backbone: Backbone | None = None,
    bootstrap: int = 1000,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the membership-inference audit on a finished run; writes and returns audit.json."""
    from fedlingua.experiment import build

    rundir = RunDir(run_dir)
    if not rundir.config_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.toml)")
    cfg = RunConfig.load(rundir.config_path)
    configure_threads(cfg.threads)
    states = rundir.load_states(f"{which}.safetensors")
    exp = build(cfg, backbone=backbone)
    per_lang, all_m, all_n = {}, [], []
    for lang, (members, non_members, provenance) in split_members(exp, cfg.seed).items():
        model = exp.model_for(lang)
        if model not in states:
            raise FileNotFoundError(f"{run_dir}: no saved model {model!r} in {which}.safetensors")
        scores = [_member_scores(exp, states[model], rows) for rows in (members, non_members)]
        per_lang[lang] = attack_metrics(*scores, bootstrap=bootstrap, seed=cfg.seed) | {
            "model": model,
            "non_member_source": provenance,
        }
        all_m.append(scores[0])
        all_n.append(scores[1])
        log(
            f"{lang}: AUC {per_lang[lang]['auc']:.3f}, TPR@1%FPR "
            f"{per_lang[lang]['tpr_at_1pct_fpr']:.3f} "
            f"({len(members)} members, {len(non_members)} non-members)"
        )
    overall = attack_metrics(np.concatenate(all_m), np.concatenate(all_n), bootstrap=bootstrap)
    macro = {
        key: float(np.mean([v[key] for v in per_lang.values()]))
        for key in ("auc", "tpr_at_1pct_fpr", "tpr_at_10pct_fpr", "advantage")
    }
    result = {
        "run_dir": str(rundir.path),
        "paradigm": cfg.paradigm,
        "method": cfg.method.name,
        "dataset": cfg.data.source,
        "seed": cfg.seed,
        "which": which,
        "attack": "loss threshold (Yeom et al. 2018): member if loss < t",
        "languages": per_lang,
        "overall": overall,
        "macro": macro,
    }
    write_json(rundir.path / "audit.json", result)
    log(
        f"overall: AUC {overall['auc']:.3f} (95% CI {overall.get('auc_ci95')}), TPR@1%FPR "
        f"{overall['tpr_at_1pct_fpr']:.3f}; written to {rundir.path / 'audit.json'}"
    )
    return result
