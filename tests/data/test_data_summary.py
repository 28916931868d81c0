"""summarize / format_summary: sizes, label distributions, token-length percentiles."""

from __future__ import annotations

import json

from fedlingua.data import format_summary, load_dataset, summarize


def test_summary_counts_and_token_lengths(tiny_tokenizer):
    ds = load_dataset("cldr", languages=["fr", "lg"])
    s = summarize(ds, tiny_tokenizer, text_prefix="query: ")
    json.dumps(s)  # JSON-able, for run directories
    assert s["languages"] == ["fr", "lg"] and s["sizes"] == ds.sizes()
    assert s["totals"]["train"] == len(ds.split("fr", "train")) + len(ds.split("lg", "train"))
    fr_train = s["label_counts"]["fr"]["train"]
    assert sum(fr_train.values()) == len(ds.split("fr", "train")) and "script" in fr_train
    assert "script" not in s["label_counts"]["lg"]["train"]  # babel has no lg script names
    lengths = s["token_lengths"]["lg"]
    assert lengths["n"] == sum(ds.sizes()["lg"].values())
    assert 3 <= lengths["p50"] <= lengths["p90"] <= lengths["p99"] <= lengths["max"]
    text = format_summary(s)
    for part in ("dataset cldr", "labels (train)", "token lengths", "p99", "total", "notes"):
        assert part in text
    assert "skipped bad rows: none" in text


def test_summary_of_a_preset_shows_groups_and_caps_tokenized_examples(preset, tiny_tokenizer):
    ds = preset("masakhanews")
    s = summarize(ds, tiny_tokenizer, max_examples_per_language=50)
    assert all(v["n"] == 50 for v in s["token_lengths"].values())
    assert s["groups"]["50-shot"] == ["amh", "eng", "fra", "hau", "swa", "tir"]
    text = format_summary(s)
    assert "group 50-shot: amh, eng, fra, hau, swa, tir" in text and "religion" in text
    train_table = text.split("labels (train)")[1]
    yor = next(line for line in train_table.splitlines() if line.startswith("yor "))
    assert yor.split()[1] == "-"  # yor has no business label at all: "-", not 0
