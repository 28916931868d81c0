"""Personalization: after training, each client fine-tunes the model that serves its
language for a few local steps on its own data, and that personalized model is scored
on the language's test split.

It is reported as its own result ("personalized", with its extra steps and compute),
never mixed into the global model's numbers. With several clients per language the
language's score is the mean over its clients' personalized models.
"""

from __future__ import annotations

import numpy as np

from fedlingua.evaluation import averages, scores
from fedlingua.experiment import Experiment
from fedlingua.runtime import derive_seed
from fedlingua.training import State, local_update, predict


def personalize(exp: Experiment, states: dict[str, State], steps: int) -> dict:
    """Scores of every client's personalized model on its language's test split (and,
    under "dev", on its dev split: what chooses a recipe)."""
    cfg, bench = exp.cfg, exp.bench
    t = cfg.train
    lr = t.lr or bench.method.default_lr
    per_client: dict[str, list[dict]] = {}
    per_client_dev: dict[str, list[dict]] = {}
    compute_s = 0.0
    for c in exp.clients:
        model = exp.model_for(c.lang)
        test = exp.test.get(c.lang)
        if model not in states or test is None or len(test) == 0:
            continue
        result = local_update(
            bench,
            states[model],
            exp.train[c.client_id],
            epochs=1,
            max_steps=steps,
            batch_size=t.batch_size,
            lr=lr,
            seed=derive_seed("personalize", cfg.seed, c.client_id),
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            optimizer=t.optimizer,
            momentum=t.momentum,
            logit_adjustment=t.logit_adjustment,
        )
        compute_s += result.compute_s
        for split, store in ((test, per_client), (exp.dev.get(c.lang), per_client_dev)):
            if split is not None and len(split):
                preds = predict(bench, result.state, split, t.eval_batch_size)
                score = scores(preds, split.labels, exp.dataset.labels)
                store.setdefault(c.lang, []).append(score)
    languages = {lang: _mean_scores(rows) for lang, rows in per_client.items()}
    dev = {lang: _mean_scores(rows)["accuracy"] for lang, rows in per_client_dev.items()}
    return {
        "steps": steps,
        "clients": sum(len(rows) for rows in per_client.values()),
        "compute_s": compute_s,
        "languages": languages,
        "dev": dev,
        "averages": averages(
            languages, client_languages=list(languages), low_resource=cfg.data.low_resource
        ),
    }


def _mean_scores(rows: list[dict]) -> dict:
    if len(rows) == 1:
        return rows[0]
    keys = ("accuracy", "macro_f1")
    return {k: float(np.mean([r[k] for r in rows])) for k in keys} | {"n": rows[0]["n"]}
