"""Clients: one per language by default, iid/dirichlet shards, few-shot, caps, seeded."""

from __future__ import annotations

from collections import Counter

import pytest

from fedlingua.data import DataError, load_dataset, make_clients


@pytest.fixture(scope="module")
def ds():
    return load_dataset("cldr", languages=["fr", "sw", "lg"])


def test_one_client_per_language_holds_its_train_split(ds):
    clients = make_clients(ds)
    assert [c.client_id for c in clients] == ["fr", "sw", "lg"]
    for c in clients:
        assert c.train == ds.split(c.lang, "train") and c.num_examples == len(c.train)


def test_iid_shards_partition_train_and_keep_class_balance(ds):
    clients = make_clients(ds, languages=["fr"], clients_per_language=4)
    assert [c.client_id for c in clients] == ["fr-0", "fr-1", "fr-2", "fr-3"]
    texts = [ex.text for c in clients for ex in c.train]
    assert sorted(texts) == sorted(ex.text for ex in ds.split("fr", "train"))
    sizes = [c.num_examples for c in clients]
    assert max(sizes) - min(sizes) <= 1
    for label in range(len(ds.labels)):
        counts = [c.label_counts().get(label, 0) for c in clients]
        assert max(counts) - min(counts) <= 1


def test_dirichlet_shards_are_skewed_nonempty_and_complete(ds):
    clients = make_clients(
        ds, languages=["fr"], clients_per_language=5, partition="dirichlet", alpha=0.1
    )
    assert all(c.num_examples > 0 for c in clients)
    assert sum(c.num_examples for c in clients) == len(ds.split("fr", "train"))
    shares = [max(c.label_counts().values()) / c.num_examples for c in clients]
    assert max(shares) > 0.6  # strong label skew with small alpha
    tiny = make_clients(
        ds, languages=["lg"], clients_per_language=6, partition="dirichlet", alpha=0.01, few_shot=2
    )
    assert all(c.num_examples > 0 for c in tiny)


def test_few_shot_takes_k_per_class(ds):
    clients = make_clients(ds, few_shot=5)
    for c in clients:
        have = Counter(ex.label for ex in ds.split(c.lang, "train"))
        assert c.label_counts() == {y: min(5, n) for y, n in have.items()}


def test_max_train_caps_each_client_stratified(ds):
    clients = make_clients(ds, max_train=40, clients_per_language=2)
    for c in clients:
        assert c.num_examples == 40
        assert len(c.label_counts()) == len(Counter(ex.label for ex in ds.split(c.lang, "train")))


def test_same_seed_same_clients_other_seed_differs(ds):
    kw = {"clients_per_language": 3, "partition": "dirichlet", "few_shot": 30, "max_train": 50}
    a, b = make_clients(ds, seed=7, **kw), make_clients(ds, seed=7, **kw)
    assert [(c.client_id, c.train) for c in a] == [(c.client_id, c.train) for c in b]
    c = make_clients(ds, seed=8, **kw)
    assert [x.train for x in a] != [x.train for x in c]


def test_a_language_clients_do_not_depend_on_other_languages(ds):
    kw = {"clients_per_language": 2, "partition": "dirichlet", "few_shot": 10, "seed": 3}
    alone = make_clients(ds, languages=["sw"], **kw)
    mixed = make_clients(ds, languages=["fr", "sw"], **kw)
    assert [c.train for c in alone] == [c.train for c in mixed if c.lang == "sw"]


def test_bad_arguments_are_rejected(ds):
    with pytest.raises(ValueError, match="partition"):
        make_clients(ds, partition="random")
    with pytest.raises(DataError, match="no language"):
        make_clients(ds, languages=["de"])
    with pytest.raises(DataError, match="fewer than clients_per_language"):
        make_clients(ds, languages=["lg"], few_shot=1, clients_per_language=10)
