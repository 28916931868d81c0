"""A synthetic multilingual "marker word" task, written as a folder dataset, for robustness tests.

Each example is a few words of a language's CLDR territory names (from babel, so each
language has its own script and vocabulary) with one of four marker words inserted at
a random position; the marker decides the label. Even the tiny random backbone learns
it within a few rounds, which CLDR's own task does not give: so an attack that
destroys the global model shows up as accuracy falling to chance (25 %), and a defence
as accuracy staying where the clean run is. Used by benchmarks/robust_aggregation.py
and tests/federation/test_robust_aggregation.py.

    write_marker_dataset(root, ["fr", "sw", "lg"])  ->  root/<lang>/{train,dev,test}.jsonl
    cfg.data.source = str(root)
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

MARKERS = ("January", "Monday", "Sunday", "December")  # whole pieces of the tiny vocabulary


def write_marker_dataset(
    root: str | Path,
    languages: Sequence[str],
    *,
    train: int = 200,
    evaluation: int = 100,
    words: int = 5,
    seed: int = 0,
) -> Path:
    """Write `root/<lang>/{train,dev,test}.jsonl` (fields text, label) and return `root`."""
    from babel import Locale

    root = Path(root)
    rng = random.Random(seed)
    for lang in languages:
        filler = [w for name in Locale.parse(lang).territories.values() for w in name.split()]
        folder = root / lang
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", train), ("dev", evaluation), ("test", evaluation)):
            rows = []
            for _ in range(n):
                label = rng.randrange(len(MARKERS))
                text = rng.sample(filler, words)
                text.insert(rng.randrange(words + 1), MARKERS[label])
                rows.append({"text": " ".join(text), "label": f"marker-{label}"})
            (folder / f"{split}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
            )
    return root
