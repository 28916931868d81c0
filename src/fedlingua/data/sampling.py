"""Seeded, stratified index sampling shared by fixed splits, few-shot and client partitions.

Every function takes its own `random.Random`, seeded by the caller from a string such as
"cldr:0:fr": Python seeds a Random from a str deterministically (not via hash()), so a
language's draw does not depend on which other languages are loaded or on PYTHONHASHSEED.
Training derives integer seeds with `runtime.derive_seed` (sha256 of "/"-joined parts)
instead; the two schemes stay separate because merging them would change every split,
sample and client partition drawn so far.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def rng_for(*parts: object) -> random.Random:
    """A Random seeded from the parts, e.g. rng_for("clients", seed, lang)."""
    return random.Random(":".join(str(p) for p in parts))


def by_class(labels: Sequence[int | str]) -> dict[int | str, list[int]]:
    """Indices per class, classes in sorted order, indices ascending."""
    groups: dict[int | str, list[int]] = {}
    for i, y in enumerate(labels):
        groups.setdefault(y, []).append(i)
    return {y: groups[y] for y in sorted(groups)}


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def stratified_split(
    labels: Sequence[int | str], fractions: Sequence[float], rng: random.Random
) -> list[list[int]]:
    """Cut each class by the cumulative fractions; parts hold ascending indices."""
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {fractions}")
    parts: list[list[int]] = [[] for _ in fractions]
    for idx in by_class(labels).values():
        idx = idx[:]
        rng.shuffle(idx)
        bounds, acc = [0], 0.0
        for f in fractions:
            acc += f
            bounds.append(_round(acc * len(idx)))
        for k in range(len(fractions)):
            parts[k].extend(idx[bounds[k] : bounds[k + 1]])
    return [sorted(p) for p in parts]


def per_class_sample(labels: Sequence[int | str], k: int, rng: random.Random) -> list[int]:
    """Up to k indices of every class (all of a smaller class); ascending."""
    if k < 1:
        raise ValueError(f"few_shot must be >= 1, got {k}")
    out: list[int] = []
    for idx in by_class(labels).values():
        out.extend(rng.sample(idx, k) if len(idx) > k else idx)
    return sorted(out)


def stratified_sample(labels: Sequence[int | str], n: int, rng: random.Random) -> list[int]:
    """n indices keeping class proportions (largest remainder; every class kept if n allows)."""
    if n >= len(labels):
        return list(range(len(labels)))
    groups = by_class(labels)
    quota = {y: n * len(idx) / len(labels) for y, idx in groups.items()}
    take = {y: int(q) for y, q in quota.items()}
    # Classes that would vanish get one first (when n allows), then the largest remainders.
    order = sorted(groups, key=lambda y: (take[y] > 0, -(quota[y] - take[y]), str(y)))
    for y in order:
        if sum(take.values()) >= n:
            break
        if take[y] < len(groups[y]):
            take[y] += 1
    out: list[int] = []
    for y, idx in groups.items():
        out.extend(rng.sample(idx, take[y]))
    return sorted(out)
