"""Personalization: after training, each training site fine-tunes the model that serves its
language for a few local steps on its own data, and scores that personalized model on its
own dev and test rows (both happen on the site: `fedlingua.federation.site`).

It is reported as its own result ("personalized", with its extra steps and compute),
never mixed into the global model's numbers. With several sites per language the
language's score pools their counts: each site's personalized model on its own rows.
"""

from __future__ import annotations

from fedlingua.evaluation import averages
from fedlingua.experiment import Coordinator
from fedlingua.training import State


def personalize(coord: Coordinator, states: dict[str, State], steps: int) -> dict:
    """Scores of the sites' personalized models per language, on test (and, under "dev",
    on dev: what chooses a recipe)."""
    outcome = coord.personalized(states, steps)
    pairs = sorted({(model, lang) for _, model, lang in outcome.counts})
    order = {x: i for i, x in enumerate(coord.eval_languages)}
    pairs.sort(key=lambda p: order.get(p[1], len(order)))
    languages = coord.scored(outcome, "test", pairs)
    dev = {x: s["accuracy"] for x, s in coord.scored(outcome, "dev", pairs).items()}
    asked = {c.client_id for c in coord.roster.training}
    return {
        "steps": steps,
        "clients": len(asked - set(outcome.failed)),
        "compute_s": outcome.compute_s,
        "languages": languages,
        "dev": dev,
        "averages": averages(
            languages, client_languages=list(languages), low_resource=coord.cfg.data.low_resource
        ),
    }
