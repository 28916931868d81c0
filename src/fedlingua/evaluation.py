"""Scores per language and the averages the paper reports.

Accuracy, macro-F1, per-class recall and the confusion matrix per language (a
model that never predicts some class shows there, whatever its accuracy);
averages over all evaluated languages,
over a low-resource group, over languages that had a client and over languages
that had none (zero-shot transfer); and, for a language no model serves, the model
chosen on dev among several (e.g. monolingual models of other languages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def confusion_matrix(preds: Iterable[int], gold: Iterable[int], k: int) -> np.ndarray:
    """k x k counts (rows: gold label, columns: predicted label)."""
    gold = np.asarray(list(gold), dtype=np.int64)
    preds = np.asarray(list(preds), dtype=np.int64)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (gold, preds), 1)
    return confusion


def scores(preds: np.ndarray, gold: Iterable[int], labels: Sequence[str] | None = None) -> dict:
    """Accuracy and macro-F1 (over the labels present in gold or predictions); with the
    dataset's `labels`, also recall per class and the confusion matrix (rows: gold)."""
    gold = np.asarray(list(gold), dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    k = (
        len(labels)
        if labels is not None
        else int(max(gold.max(initial=-1), preds.max(initial=-1))) + 1
    )
    return scores_from_confusion(confusion_matrix(preds, gold, max(k, 0)), labels)


def scores_from_confusion(confusion: np.ndarray, labels: Sequence[str] | None = None) -> dict:
    """`scores` from counts alone: what a site's evaluation reply carries (summed over the
    sites that hold a language's rows), never the examples or the per-example outputs."""
    confusion = np.asarray(confusion, dtype=np.int64)
    n = int(confusion.sum())
    if n == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "n": 0}
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    tp = np.diag(confusion)
    present = (support > 0) | (predicted > 0)  # labels in gold or in the predictions
    f1s = [
        0.0
        if tp[i] == 0
        else 2 * tp[i] / (2 * tp[i] + (predicted[i] - tp[i]) + (support[i] - tp[i]))
        for i in np.flatnonzero(present)
    ]
    out: dict = {
        "accuracy": float(tp.sum() / n),
        "macro_f1": float(np.mean(f1s)),
        "n": n,
    }
    if labels is not None:
        out["recall"] = {
            name: float(confusion[i, i] / support[i]) if support[i] else None
            for i, name in enumerate(labels)
        }
        out["confusion"] = confusion.tolist()
        out["never_predicted"] = [
            name for i, name in enumerate(labels) if support[i] and predicted[i] == 0
        ]
    return out


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(values)) if values else None


def averages(
    per_language: Mapping[str, Mapping[str, float]],
    *,
    client_languages: Iterable[str],
    low_resource: Iterable[str] = (),
    zero_shot: Iterable[str] = (),
    metric: str = "accuracy",
) -> dict[str, float | None]:
    """Unweighted means over language groups (None when a group is empty)."""

    def group(langs: Iterable[str]) -> float | None:
        return _mean([per_language[lang][metric] for lang in langs if lang in per_language])

    return {
        "average": group(per_language),
        "client_average": group(client_languages),
        "low_resource_average": group(low_resource),
        "zero_shot_average": group(zero_shot),
    }


def pick_on_dev(
    dev: Mapping[str, Mapping[str, float]],
    test: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, dict]:
    """Per language (column), the model (row) chosen by its dev accuracy there, and its
    test accuracy: the honest figure for "the best of several models" (a choice on test
    would report the luckiest model on the very sentences it is scored on).

    `dev`, `test`: model -> language -> accuracy (transfer matrices, e.g.
    `Experiment.matrix`); `test` needs only the chosen models' scores (without `test`, the
    choice alone). Models tied on dev share the choice: `test` is then their mean test
    accuracy (the expectation of picking one of them at random), and `models` lists them.
    Where `test` holds every model's score, also for reference: `mean_test`, the mean over
    the models (the average transfer), and `oracle_test` / `oracle_model`, the best model
    on test itself (an optimistic bound, never a result).
    """
    models = sorted(dev)
    out = {}
    for lang in dev[models[0]] if models else ():
        best = max(dev[m][lang] for m in models)
        tied = [m for m in models if dev[m][lang] == best]
        out[lang] = {"models": tied, "dev": best}
        if test is None:
            continue
        tests = {m: test[m][lang] for m in models if lang in test.get(m, {})}
        missing = [m for m in tied if m not in tests]
        if missing:
            raise ValueError(f"pick_on_dev: no test score of {missing} on {lang}")
        out[lang]["test"] = float(np.mean([tests[m] for m in tied]))
        if len(tests) == len(models):
            oracle = max(models, key=tests.__getitem__)
            out[lang] |= {
                "mean_test": float(np.mean(list(tests.values()))),
                "oracle_test": tests[oracle],
                "oracle_model": oracle,
            }
    return out
