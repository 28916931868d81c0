"""The tiny test backbone: quick to build, XLM-R-style specials, runs forward."""

from __future__ import annotations

import time

import torch

from fedlingua.models import build_tiny_backbone, describe_backbone


def test_builds_quickly_with_xlmr_style_specials():
    start = time.perf_counter()
    tiny = build_tiny_backbone()
    assert time.perf_counter() - start < 2.0
    tok = tiny.tokenizer
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == 4 and 500 < len(tok) <= 4000
    assert tiny.text_prefix == "" and tiny.max_positions == 128
    assert tiny.encoder.config.vocab_size == len(tok)


def test_tokenizes_and_runs_forward():
    tiny = build_tiny_backbone(hidden=16, layers=1, heads=2)
    batch = tiny.tokenizer(["ሰላም ለዓለም", "Ọmọ náà", "你好"], padding=True, return_tensors="pt")
    assert batch["input_ids"][:, 0].eq(0).all()
    with torch.no_grad():
        hidden = tiny.encoder(**batch).last_hidden_state
    assert hidden.shape == (*batch["input_ids"].shape, 16)
    assert describe_backbone(tiny)["parameters"]["other"] == 0  # no pooler


def test_custom_texts_and_seed():
    texts = ["alpha beta gamma", "delta epsilon", "zeta eta theta"] * 20
    a = build_tiny_backbone(texts, seed=1)
    b = build_tiny_backbone(texts, seed=2)
    assert "▁alpha" in a.tokenizer.get_vocab()
    assert not torch.equal(
        a.encoder.embeddings.word_embeddings.weight, b.encoder.embeddings.word_embeddings.weight
    )


def test_does_not_touch_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_backbone()
    assert torch.equal(torch.rand(3), expected)
