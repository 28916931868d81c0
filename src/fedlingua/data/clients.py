"""Turning a dataset's train splits into federated clients.

One client per language by default. With `clients_per_language=k` a language's train set
is cut into k shards: "iid" (stratified random, sizes differ by at most one per class) or
"dirichlet" (label skew: each class is spread over the shards by proportions drawn from
Dirichlet(alpha); small alpha = strong skew). Order of operations per language: few-shot
subsample (k per class) -> partition -> cap each client at `max_train` (stratified).
Every draw is seeded from (seed, language), so the same seed gives identical clients and a
language's clients do not change when other languages are added.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .sampling import by_class, per_class_sample, rng_for, stratified_sample
from .schema import DataError, Example, MultilingualDataset

PARTITIONS: tuple[str, ...] = ("iid", "dirichlet")
_DIRICHLET_TRIES = 100


@dataclass
class ClientData:
    client_id: str  # "hau", or "hau-0", "hau-1", ... with several clients per language
    lang: str
    train: list[Example]

    @property
    def num_examples(self) -> int:
        return len(self.train)

    def label_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(ex.label for ex in self.train).items()))


def make_clients(
    ds: MultilingualDataset,
    *,
    languages: list[str] | None = None,
    clients_per_language: int = 1,
    partition: str = "iid",
    alpha: float = 0.5,
    few_shot: int | None = None,
    max_train: int | None = None,
    seed: int = 0,
) -> list[ClientData]:
    """Clients for `languages` (default: all of ds), in language order then shard order."""
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    if clients_per_language < 1:
        raise ValueError(f"clients_per_language must be >= 1, got {clients_per_language}")
    if partition == "dirichlet" and not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if max_train is not None and max_train < 1:
        raise ValueError(f"max_train must be >= 1, got {max_train}")
    langs = ds.languages() if languages is None else list(languages)
    unknown = [lang for lang in langs if lang not in ds.data]
    if unknown:
        raise DataError(f"{ds.name} has no language(s) {unknown}", hint=f"it has {ds.languages()}")
    clients: list[ClientData] = []
    for lang in langs:
        train = ds.split(lang, "train")
        if few_shot is not None:
            keep = per_class_sample(
                [ex.label for ex in train], few_shot, rng_for("few-shot", seed, lang)
            )
            train = [train[i] for i in keep]
        if len(train) < clients_per_language:
            raise DataError(
                f"{ds.name}: language {lang!r} has {len(train)} train examples, fewer than "
                f"clients_per_language={clients_per_language}",
                hint="use fewer clients per language or leave the language out",
            )
        labels = [ex.label for ex in train]
        if partition == "iid":
            shards = _iid(labels, clients_per_language, seed, lang)
        else:
            shards = _dirichlet(labels, clients_per_language, alpha, seed, lang)
        for k, shard in enumerate(shards):
            cid = lang if clients_per_language == 1 else f"{lang}-{k}"
            if max_train is not None and len(shard) > max_train:
                pick = stratified_sample(
                    [labels[i] for i in shard], max_train, rng_for("max-train", seed, cid)
                )
                shard = [shard[i] for i in pick]
            clients.append(ClientData(cid, lang, [train[i] for i in shard]))
    return clients


def _iid(labels: list[int], k: int, seed: int, lang: str) -> list[list[int]]:
    """Deal each shuffled class round-robin, continuing where the last class stopped."""
    rng = rng_for("iid", seed, lang)
    shards: list[list[int]] = [[] for _ in range(k)]
    turn = 0
    for idx in by_class(labels).values():
        idx = idx[:]
        rng.shuffle(idx)
        for i in idx:
            shards[turn % k].append(i)
            turn += 1
    return [sorted(s) for s in shards]


def _dirichlet(labels: list[int], k: int, alpha: float, seed: int, lang: str) -> list[list[int]]:
    """Per class, shard proportions ~ Dirichlet(alpha); redraw until no shard is empty.

    If a non-empty draw is not found in 100 tries (tiny data, tiny alpha), the last draw is
    repaired by moving one example from the largest shard into each empty one.
    """
    digest = hashlib.sha256(f"dirichlet:{seed}:{lang}".encode()).digest()
    gen = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    classes = list(by_class(labels).values())
    for _ in range(_DIRICHLET_TRIES):
        shards: list[list[int]] = [[] for _ in range(k)]
        for idx in classes:
            idx = list(gen.permutation(idx))
            cuts = np.floor(np.cumsum(gen.dirichlet([alpha] * k)) * len(idx) + 0.5).astype(int)
            start = 0
            for s, end in enumerate(cuts):
                shards[s].extend(int(i) for i in idx[start:end])
                start = end
        if all(shards):
            break
    for s in range(k):
        if not shards[s]:
            largest = max(range(k), key=lambda j: len(shards[j]))
            shards[s].append(shards[largest].pop())
    return [sorted(s) for s in shards]
