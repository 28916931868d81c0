"""encode: batched fast tokenization; iterate_batches: dynamic padding, bucketing, order."""

from __future__ import annotations

import pytest
import torch

from fedlingua.data import EncodedSplit, Example, encode, iterate_batches, load_dataset, text_budget


@pytest.fixture(scope="module")
def cldr():
    return load_dataset("cldr", languages=["fr", "sw"])


def test_encode_adds_special_tokens_truncates_and_keeps_labels(tiny_tokenizer, cldr):
    rows = cldr.split("fr", "test")
    enc = encode(tiny_tokenizer, rows, max_length=6)
    assert len(enc) == len(rows) and enc.labels == [ex.label for ex in rows]
    assert enc.langs == ["fr"] * len(rows)
    assert all(ids[0] == 0 and ids[-1] == 2 and len(ids) <= 6 for ids in enc.input_ids)
    full = encode(tiny_tokenizer, rows, max_length=512)
    assert max(full.lengths()) > 6
    assert all(a == b for a, b in zip(full.input_ids, enc.input_ids, strict=True) if len(a) <= 6)


def test_text_prefix_goes_before_the_first_text_only(tiny_tokenizer):
    ex = Example("allemand", 0, "fr", text_pair="Allemagne")
    plain = encode(tiny_tokenizer, [ex], max_length=64).input_ids[0]
    pref = encode(tiny_tokenizer, [ex], max_length=64, text_prefix="query: ").input_ids[0]
    query = tiny_tokenizer("query: allemand", "Allemagne")["input_ids"]
    assert pref == query and len(pref) > len(plain)
    single = encode(
        tiny_tokenizer, [Example("allemand", 0, "fr")], max_length=64, text_prefix="query: "
    )
    assert single.input_ids[0] == tiny_tokenizer("query: allemand")["input_ids"]


def test_pairs_truncate_longest_first(tiny_tokenizer):
    long_a = " ".join(["allemand"] * 40)
    ex = Example(long_a, 1, "fr", text_pair="Allemagne")
    ids = encode(tiny_tokenizer, [ex], max_length=16).input_ids[0]
    pair = tiny_tokenizer("Allemagne")["input_ids"][1:-1]
    assert len(ids) == 16 and ids[-1 - len(pair) : -1] == pair  # the short text survives whole


def test_mixed_singles_and_pairs_are_rejected(tiny_tokenizer):
    with pytest.raises(ValueError, match="mix"):
        encode(tiny_tokenizer, [Example("a", 0, "x"), Example("a", 0, "x", "b")], max_length=8)


def test_long_text_shortcut_equals_full_encoding(tiny_tokenizer):
    words = [ex.text for ex in load_dataset("cldr", languages=["sw"]).split("sw", "train")]
    texts = [" ".join(words[i : i + 300]) for i in range(0, 240, 8)]
    texts.append("x" * 5000)  # no whitespace: never cut
    texts.append(" ".join(words[:6]) + " " + "y" * 3000)  # cut point too early: not cut
    rows = [Example(t, 0, "sw") for t in texts]
    for max_length in (16, 64):
        got = encode(tiny_tokenizer, rows, max_length=max_length).input_ids
        want = tiny_tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        assert got == want


def test_long_text_shortcut_matches_e5_on_masakhanews(e5_tokenizer, preset):
    rows = (
        preset("masakhanews").split("amh", "test")[:150]
        + preset("masakhanews").split("eng", "test")[:150]
    )
    texts = ["query: " + ex.text for ex in rows]
    got = encode(e5_tokenizer, rows, max_length=128, text_prefix="query: ").input_ids
    assert got == e5_tokenizer(texts, truncation=True, max_length=128)["input_ids"]


def _enc(lengths: list[int]) -> EncodedSplit:
    ids = [[0] + [5 + i] * (n - 2) + [2] for i, n in enumerate(lengths)]
    return EncodedSplit(ids, [i % 3 for i in range(len(lengths))], ["x"] * len(lengths))


def test_batches_pad_to_their_own_longest_row_and_cover_every_row_once():
    enc = _enc([3 + (7 * i) % 40 for i in range(250)])
    seen = []
    for batch in iterate_batches(enc, batch_size=16, pad_id=1, shuffle=True, seed=0):
        ids, mask, index = batch["input_ids"], batch["attention_mask"], batch["index"]
        assert ids.dtype == mask.dtype == batch["labels"].dtype == torch.long
        assert ids.shape[1] == max(len(enc.input_ids[i]) for i in index.tolist())
        for r, i in enumerate(index.tolist()):
            n = len(enc.input_ids[i])
            assert ids[r, :n].tolist() == enc.input_ids[i] and mask[r].sum() == n
            assert (ids[r, n:] == 1).all() and batch["labels"][r] == enc.labels[i]
        seen += index.tolist()
    assert sorted(seen) == list(range(250))


def test_shuffle_is_seeded_and_buckets_by_length():
    enc = _enc([3 + (13 * i) % 97 for i in range(2000)])

    def order(seed):
        return [
            b["index"].tolist()
            for b in iterate_batches(enc, batch_size=8, pad_id=1, shuffle=True, seed=seed)
        ]

    assert order(1) == order(1) and order(1) != order(2)
    batches = list(iterate_batches(enc, batch_size=8, pad_id=1, shuffle=True, seed=1))
    padded = sum(b["input_ids"].numel() for b in batches)
    real = sum(len(x) for x in enc.input_ids)
    assert padded < 1.1 * real  # bucketing keeps padding small
    assert len(batches) == -(-len(enc) // 8)


def test_eval_order_is_longest_first_and_index_restores_order():
    enc = _enc([5, 9, 3, 9, 7])
    batches = list(iterate_batches(enc, batch_size=2, pad_id=1, shuffle=False))
    index = torch.cat([b["index"] for b in batches]).tolist()
    assert index == [1, 3, 4, 0, 2]
    restored = [None] * len(enc)
    for b in batches:
        for row, i in zip(b["input_ids"], b["index"].tolist(), strict=True):
            restored[i] = row[row != 1].tolist()
    assert restored == enc.input_ids


def test_text_budget():
    assert text_budget(512, 20, 256) == 256
    assert text_budget(512, 300, 256) == 212
    with pytest.raises(ValueError, match="at most 503 virtual tokens"):
        text_budget(512, 505, 256)
    with pytest.raises(ValueError, match="too short"):
        text_budget(512, 20, 8)
