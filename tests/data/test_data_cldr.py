"""The built-in CLDR dataset: offline, labelled by kind, seeded per-locale splits."""

from __future__ import annotations

from collections import Counter

import pytest
from babel import Locale

from fedlingua.data import DEFAULT_CLDR_LOCALES, MASAKHANEWS_TO_CLDR, DataError, load_dataset
from fedlingua.data.cldr import cldr_names


def test_default_is_cldr_with_default_locales():
    ds = load_dataset()
    assert ds.name == "cldr" and ds.languages() == list(DEFAULT_CLDR_LOCALES)
    assert ds.labels == ("language", "territory", "currency", "script")
    sizes = {lang: sum(s.values()) for lang, s in ds.sizes().items()}
    assert sizes["fr"] > 1000 and all(300 < sizes[x] < 400 for x in ("lg", "sn", "rn"))


def test_names_are_stripped_unique_and_unambiguous():
    loc = Locale.parse("fr")
    names = cldr_names("fr")
    texts = [n for n, _ in names]
    assert len(texts) == len(set(texts)) and all(t == t.strip() and t for t in texts)
    ambiguous = set(loc.languages.values()) & set(loc.scripts.values())
    assert "arabe" in ambiguous and "arabe" not in texts
    kinds = dict(names)
    assert kinds["allemand"] == "language" and kinds["Allemagne"] == "territory"
    assert kinds["euro"] == "currency"


def test_splits_are_stratified_60_20_20_and_disjoint():
    ds = load_dataset("cldr", languages=["sw"])
    sizes = ds.sizes()["sw"]
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.6) < 0.01 and abs(sizes["test"] / total - 0.2) < 0.01
    parts = [{ex.text for ex in ds.split("sw", s)} for s in ("train", "dev", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    train = Counter(ex.label for ex in ds.split("sw", "train"))
    test = Counter(ex.label for ex in ds.split("sw", "test"))
    assert all(abs(train[k] - 3 * test[k]) <= 3 for k in train)


def test_split_of_a_locale_does_not_depend_on_the_others():
    alone = load_dataset("cldr", languages=["ha"])
    mixed = load_dataset("cldr", languages=["fr", "ha", "yo"])
    assert alone.data["ha"] == mixed.data["ha"]
    assert load_dataset("cldr", languages=["ha"], seed=1).data["ha"] != alone.data["ha"]


def test_all_masakhanews_languages_exist_as_locales():
    ds = load_dataset("cldr", languages=list(MASAKHANEWS_TO_CLDR.values()))
    assert len(ds.languages()) == 16
    assert all(sum(s.values()) > 300 for s in ds.sizes().values())


def test_unknown_locale_suggests_the_babel_id():
    with pytest.raises(DataError, match="babel knows it as 'ha'"):
        load_dataset("cldr", languages=["hau"])
    with pytest.raises(DataError, match="unknown CLDR locale 'zz'"):
        load_dataset("cldr", languages=["zz"])
