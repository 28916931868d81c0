"""The four local presets read every row of shared/data with the right quoting."""

from __future__ import annotations

import csv
import time
from collections import Counter

import pytest

from fedlingua.data import PRESETS, DataUnavailableError, default_data_root, load_dataset
from fedlingua.data.readers import RowPolicy, count_rows, iter_delimited

QUOTING = {"masakhanews": "csv", "sib200": "csv", "xnli": "none", "xglue_nc": "none"}
HEADER = {"masakhanews": True, "sib200": True, "xnli": False, "xglue_nc": False}


def test_raw_row_counts_match_manifest(data_root, manifest):
    checked = 0
    for rel, rows in manifest.items():
        if not rel.endswith(".tsv"):
            continue
        name = rel.split("/")[0]
        assert count_rows(data_root / rel, quoting=QUOTING[name], header=HEADER[name]) == rows, rel
        checked += 1
    assert checked == 16 * 3 + 30 * 3 + 15 * 2 + 1


def _files(manifest, name, lang):
    return {p.split("/")[-1]: n for p, n in manifest.items() if p.startswith(f"{name}/{lang}/")}


@pytest.mark.parametrize("name", ["masakhanews", "sib200"])
def test_labelled_presets_keep_every_row(preset, manifest, name):
    ds = preset(name)
    langs = {p.split("/")[1] for p in manifest if p.startswith(name + "/")}
    assert ds.languages() == sorted(langs)
    assert len(ds.languages()) == {"masakhanews": 16, "sib200": 30}[name]
    for lang, sizes in ds.sizes().items():
        files = _files(manifest, name, lang)
        train = files.get("train.tsv", files.get("train_50shot.tsv"))
        assert sizes == {"train": train, "dev": files["dev.tsv"], "test": files["test.tsv"]}


def test_masakhanews_labels_groups_and_text(preset, data_root):
    ds = preset("masakhanews")
    assert ds.labels == (
        "business",
        "entertainment",
        "health",
        "politics",
        "religion",
        "sports",
        "technology",
    )
    assert ds.groups["50-shot"] == ["amh", "eng", "fra", "hau", "swa", "tir"]
    assert len(ds.groups["full-train"]) == 10
    assert any("50-shot" in note for note in ds.notes)
    for lang in ds.languages():
        own = (data_root / "masakhanews" / lang / "labels.txt").read_text().split()
        assert ds.lang_labels[lang] == tuple(own)
        used = {ds.labels[ex.label] for s in ("train", "dev", "test") for ex in ds.split(lang, s)}
        assert used <= set(own)
    first = ds.split("eng", "test")[0]
    assert first.text.startswith("CEO Secrets: 'Don't treat your business like your baby' Liz")
    assert ds.labels[first.label] == "business" and first.lang == "eng"


def test_masakhanews_multiline_rows_parse(preset, data_root):
    path = data_root / "masakhanews" / "eng" / "test.tsv"
    physical = path.read_text(encoding="utf-8").count("\n")
    test = preset("masakhanews").split("eng", "test")
    assert len(test) == 948 and physical > 20_000
    assert sum("\n" in ex.text for ex in test) > 100
    # A naive line split sees far more "rows", most with the wrong field count.
    naive = path.read_text(encoding="utf-8").splitlines()[1:]
    assert sum(len(line.split("\t")) != 4 for line in naive) > 1000


def test_masakhanews_tabs_inside_quoted_fields(preset):
    ds = preset("masakhanews")
    with_tab = [
        ex for lang in ("orm", "som", "pcm") for ex in ds.split(lang, "train") if "\t" in ex.text
    ]
    assert with_tab, "README: orm/som/pcm train have fields containing a tab"


def test_quote_aware_reader_corrupts_xglue_nc_but_ours_does_not(preset, data_root):
    path = data_root / "xglue_nc" / "de" / "dev_subset.tsv"
    plain = [
        fields
        for _, fields in iter_delimited(path, delimiter="\t", quoting="none", policy=RowPolicy())
    ]
    with open(path, encoding="utf-8", newline="") as fh:
        quote_aware = list(csv.reader(fh, delimiter="\t"))
    changed = sum(a != b for a, b in zip(plain, quote_aware, strict=True))
    assert changed == 45  # README: 45 rows corrupted by a quote-aware reader
    ds = preset("xglue_nc")
    texts = {ex.text for s in ("train", "dev", "test") for ex in ds.split("de", s)}
    assert len(plain) == 1000 and all(len(f) == 3 for f in plain)
    expected = {f"{title.strip()} {body.strip()}" for title, body, _ in plain}
    assert texts == expected
    assert any(t.startswith('"Twin Peaks"-Fortsetzung') for t in texts)


def test_xglue_nc_split_is_stratified_seeded_and_complete(preset, data_root):
    ds = preset("xglue_nc")
    assert ds.languages() == ["de"] and len(ds.labels) == 10
    sizes = ds.sizes()["de"]
    assert sum(sizes.values()) == 1000 and sizes == {"train": 600, "dev": 200, "test": 200}
    total = Counter(
        ds.labels[ex.label] for s in ("train", "dev", "test") for ex in ds.split("de", s)
    )
    assert total == {
        "news": 294,
        "sports": 252,
        "entertainment": 212,
        "finance": 101,
        "lifestyle": 45,
        "autos": 38,
        "video": 25,
        "health": 18,
        "travel": 13,
        "foodanddrink": 2,
    }
    again = load_dataset("xglue_nc", root=data_root)
    assert again.data == ds.data
    other = load_dataset("xglue_nc", root=data_root, seed=1)
    assert other.split("de", "test") != ds.split("de", "test")
    assert any("train 600, dev 200, test 200" in note for note in ds.notes)


def test_xnli_pairs_dev_holdout_and_parallel_groups(preset, manifest):
    ds = preset("xnli")
    assert ds.task == "pair" and ds.labels == ("entailment", "neutral", "contradiction")
    assert len(ds.languages()) == 15
    for lang, sizes in ds.sizes().items():
        files = _files(manifest, "xnli", lang)
        assert sizes["train"] + sizes["dev"] == files["dev.tsv"]
        assert sizes["test"] == files["test.tsv"]
        assert sizes == {"train": 2241, "dev": 249, "test": 5010}
    en, de = ds.split("en", "dev"), ds.split("de", "dev")
    assert [ex.label for ex in en] == [ex.label for ex in de]  # same premise groups everywhere
    assert Counter(ex.label for ex in en) == {0: 83, 1: 83, 2: 83}
    assert not {ex.text for ex in en} & {ex.text for ex in ds.split("en", "train")}
    assert all(ex.text_pair for ex in en)
    assert any("no train split" in note for note in ds.notes)


def test_sib200_labels_and_parallel_note(preset):
    ds = preset("sib200")
    assert ds.labels[0] == "science/technology" and len(ds.labels) == 7
    counts = ds.label_counts("hau_Latn", "train")
    assert counts["science/technology"] == 176 and counts["geography"] == 58


def test_loading_all_presets_is_fast(data_root):
    for name in PRESETS:
        start = time.perf_counter()
        load_dataset(name, root=data_root)
        assert time.perf_counter() - start < 10, name


def test_language_selection_and_unknown_language(data_root):
    ds = load_dataset("masakhanews", root=data_root, languages=["yor", "hau"])
    assert ds.languages() == ["yor", "hau"] and len(ds.labels) == 7
    from fedlingua.data import DataError

    with pytest.raises(DataError, match="unknown language.*xyz"):
        load_dataset("sib200", root=data_root, languages=["xyz"])


def test_root_may_be_the_preset_folder_itself(data_root):
    ds = load_dataset("xglue_nc", root=data_root / "xglue_nc")
    assert ds.languages() == ["de"]


def test_missing_data_root_is_unavailable(tmp_path, monkeypatch):
    with pytest.raises(DataUnavailableError, match="not found.*cldr"):
        load_dataset("sib200", root=tmp_path)
    monkeypatch.setenv("FEDLINGUA_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert default_data_root() == tmp_path / "elsewhere"
    with pytest.raises(DataUnavailableError):
        load_dataset("masakhanews")
    with pytest.raises(DataUnavailableError, match="unknown source"):
        load_dataset("no_such_source")


def test_default_data_root_finds_shared_data(data_root, monkeypatch):
    monkeypatch.delenv("FEDLINGUA_DATA_ROOT", raising=False)
    assert default_data_root() == data_root
