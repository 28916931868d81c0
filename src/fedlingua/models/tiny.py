"""A tiny, randomly initialised backbone for fast tests of the training engine.

Same shape of objects as the real one (a `BertModel` without pooler, an XLM-R-style
fast tokenizer with `<s> <pad> </s> <unk> <mask>` at ids 0-4), built in a fraction of a
second from a small multilingual text sample. Weights and tokenizer depend only on the
arguments, so every process that builds it with the same arguments gets the same model
(federated clients in separate processes can each build their own copy).
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter

import torch
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from fedlingua.models.backbone import Backbone

TINY_MODEL = "tiny"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as in XLM-R
_PIECE_COST = 10.0
_LOCALES = [
    "en", "fr", "de", "es", "sw", "ha", "yo", "ig", "am", "ti", "om", "so", "zu", "xh",
    "rw", "ln", "lg", "sn", "ar", "hi", "ne", "si", "km", "my", "zh", "ja", "ru", "kk",
]  # fmt: skip


def sample_texts() -> list[str]:
    """About 1,500 short multilingual strings from babel's CLDR data (names, months, days)."""
    from babel import Locale

    texts: list[str] = []
    for code in _LOCALES:
        loc = Locale.parse(code)
        names = [
            *list(loc.languages.values())[:20],
            *list(loc.territories.values())[:10],
            *loc.months["format"]["wide"].values(),
            *loc.days["format"]["wide"].values(),
        ]
        texts += [" ".join(names[:12]), " ".join(names[12:24]), *names]
    return texts


def unigram_vocab(texts: list[str], vocab_size: int, max_piece: int = 8) -> list[tuple[str, float]]:
    """A deterministic unigram vocabulary: every character seen plus the most useful substrings.

    The `tokenizers` unigram trainer is not reproducible across processes (parallel float
    sums, hash-map order), and clients in separate processes must build the same tiny
    model. Here a substring of a metaspace-marked word ("▁word") is worth its count times
    the pieces it saves (length - 1); a score is the log relative frequency minus a fixed
    cost per piece, so that segmentations into fewer, longer pieces win.
    """
    words = Counter(
        "▁" + word for text in texts for word in unicodedata.normalize("NFKC", text).split()
    )
    counts: Counter[str] = Counter()
    for word, n in words.items():
        for i in range(len(word)):
            for j in range(i + 1, min(len(word), i + max_piece) + 1):
                counts[word[i:j]] += n
    chars = sorted(p for p in counts if len(p) == 1)
    budget = max(vocab_size - len(SPECIAL_TOKENS) - len(chars), 0)
    longer = sorted((p for p in counts if len(p) > 1), key=lambda p: (-counts[p] * (len(p) - 1), p))
    pieces = chars + longer[:budget]
    total = sum(counts[p] for p in pieces)
    scored = sorted(
        ((p, math.log(counts[p] / total) - _PIECE_COST) for p in pieces),
        key=lambda x: (-x[1], x[0]),
    )
    return [(t, 0.0) for t in SPECIAL_TOKENS] + scored


def build_tiny_tokenizer(
    texts: list[str] | None = None, vocab_size: int = 2000, max_length: int = 128
) -> PreTrainedTokenizerFast:
    """A small SentencePiece-style unigram tokenizer (NFKC, metaspace) for `texts`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, processors
    from tokenizers import pre_tokenizers as pre

    vocab = unigram_vocab(texts if texts is not None else sample_texts(), vocab_size)
    tok = Tokenizer(
        models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("<unk>"), byte_fallback=False)
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        cls_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        sep_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_backbone(
    texts: list[str] | None = None,
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
    max_positions: int = 128,
) -> Backbone:
    """A seeded random `BertModel` (no pooler) with a tokenizer trained on `texts`."""
    tokenizer = build_tiny_tokenizer(texts, max_length=max_positions)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["BertModel"],
    )
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        encoder = BertModel(config, add_pooling_layer=False)
    encoder.eval()
    return Backbone(
        name=TINY_MODEL,
        encoder=encoder,
        tokenizer=tokenizer,
        text_prefix="",
        max_positions=config.max_position_embeddings,
        source="(in memory)",
    )
