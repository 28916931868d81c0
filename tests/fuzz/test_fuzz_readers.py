"""Folder sources under random input: every file either loads as written or fails with a
DataError that names the file (and line/column where there is one); never a decoding,
csv or JSON traceback from inside a library, never a hang."""

from __future__ import annotations

import codecs
import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from fuzz_helpers import assert_names_file, tried
from hypothesis import given
from hypothesis import strategies as st

from fedlingua.data import DataError, load_dataset

EXTS = (".tsv", ".csv", ".jsonl")
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32")
# Characters that break naive readers: separators, quotes, line breaks of every kind,
# NUL, a BOM in the middle, non-BMP text, characters str.strip() removes.
TRICKY = "\t,\"'\r\n\x00\ufeff\x0b\x0c\x1c\x85\u2028 é中🙂"
cell = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=30)
huge_cell = st.integers(1, 300_000).map(lambda n: "x" * n)


def _render_delimited(rows: list[list[str]], sep: str, quote: bool) -> str:
    if quote:
        out = io.StringIO()
        csv.writer(out, delimiter=sep, lineterminator="\n").writerows(rows)
        return out.getvalue()
    return "".join(sep.join(row) + "\n" for row in rows)


@st.composite
def messy_file(draw) -> tuple[str, bytes]:
    """(extension, bytes): random bytes, or random rows with random quoting and encoding."""
    ext = draw(st.sampled_from(EXTS))
    if draw(st.integers(0, 4)) == 0:
        return ext, draw(st.binary(max_size=200))
    width = draw(st.integers(0, 4))
    header = draw(st.sampled_from([["label", "text"], ["text", "label"], ["label"], []]))
    body = draw(
        st.lists(
            st.lists(cell | huge_cell if width else cell, min_size=0, max_size=width + 1),
            max_size=6,
        )
    )
    rows = ([header] if header else []) + body
    if ext == ".jsonl":
        objs = [dict(zip(["label", "text", "text_pair"], r, strict=False)) for r in body]
        lines = [json.dumps(o, ensure_ascii=draw(st.booleans())) for o in objs]
        lines += draw(
            st.lists(st.sampled_from(["[1]", "{", "[" * 5000, "1" * 5000, ""]), max_size=2)
        )
        text = "\n".join(lines)
    else:
        text = _render_delimited(rows, "\t" if ext == ".tsv" else ",", draw(st.booleans()))
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if draw(st.booleans()):  # truncated mid-file, maybe mid-character
        data = data[: draw(st.integers(0, len(data)))]
    return ext, data


def _load_or_data_error(root: Path, **kwargs) -> None:
    try:
        ds = load_dataset(str(root), **kwargs)
    except DataError as err:
        assert err.path is not None, str(err)
        assert_names_file(err, err.path)
        assert Path(err.path).resolve().is_relative_to(root.resolve()), err.path
        return
    assert set(ds.languages()) <= {"xx"}


@given(
    train=messy_file(),
    test=messy_file(),
    quoting=st.sampled_from([None, "csv", "none"]),
    on_bad_rows=st.sampled_from(["error", "skip"]),
)
def test_messy_folder_loads_or_raises_data_error(train, test, quoting, on_bad_rows):
    tried("readers")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "xx").mkdir()
        (root / "xx" / f"train{train[0]}").write_bytes(train[1])
        (root / "xx" / f"test{test[0]}").write_bytes(test[1])
        _load_or_data_error(root, quoting=quoting, on_bad_rows=on_bad_rows)


# ---- well-formed files load exactly as written, whatever their quoting and BOM --------------
clean_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='\t,"\r\n'),
    min_size=1,
    max_size=40,
).filter(str.strip)
labels = st.sampled_from(["pos", "neg", "neutral", "ünï", "中文"])


@given(
    rows=st.lists(st.tuples(clean_text, labels), min_size=1, max_size=8),
    ext=st.sampled_from(EXTS),
    quoting=st.sampled_from(["csv", "none"]),
    bom=st.booleans(),
)
def test_well_formed_rows_round_trip(rows, ext, quoting, bom):
    tried("readers")
    if ext == ".jsonl":
        text = "".join(json.dumps({"label": y, "text": x}) + "\n" for x, y in rows)
    else:
        sep = "\t" if ext == ".tsv" else ","
        text = _render_delimited([["label", "text"], *[[y, x] for x, y in rows]], sep, True)
        quoting = quoting if '"' not in text else "csv"
    data = (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "xx").mkdir()
        for split in ("train", "test"):
            (root / "xx" / f"{split}{ext}").write_bytes(data)
        ds = load_dataset(str(root), quoting=quoting)
    got = [(ex.text, ds.labels[ex.label]) for ex in ds.split("xx", "train")]
    assert got == [(x.strip(), y) for x, y in rows]
    assert ds.labels == tuple(sorted({y for _, y in rows}))


# ---- regressions found by the properties above (deterministic) ------------------------------
def _folder(tmp_path: Path, name: str, data: bytes, test: bytes | None = None) -> Path:
    (tmp_path / "xx").mkdir(parents=True)
    (tmp_path / "xx" / name).write_bytes(data)
    (tmp_path / "xx" / name.replace("train", "test")).write_bytes(test or data)
    return tmp_path


@pytest.mark.parametrize("name", ["train.tsv", "train.csv", "train.jsonl"])
def test_latin1_file_is_a_data_error_naming_line_and_byte(tmp_path, name):
    """Was: UnicodeDecodeError from inside the csv/json reader."""
    row = (
        b'{"label": "a", "text": "caf\xe9"}\n'
        if name.endswith("jsonl")
        else b"label\ttext\na\tcaf\xe9\n"
    )
    root = _folder(tmp_path, name, b"label\ttext\n" * 0 + row)
    with pytest.raises(DataError) as info:
        load_dataset(str(root), quoting="none" if name.endswith(".tsv") else None)
    err = info.value
    assert err.path.endswith(name) and "not UTF-8" in str(err) and "0xe9" in str(err)
    assert err.line == (1 if name.endswith("jsonl") else 2)


def test_utf16_file_is_a_data_error_that_says_utf16(tmp_path):
    """Was: UnicodeDecodeError; a spreadsheet's 'Unicode text' export is UTF-16."""
    root = _folder(tmp_path, "train.tsv", "label\ttext\na\tone\n".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16 byte-order mark") as info:
        load_dataset(str(root))
    assert info.value.path.endswith("train.tsv") and info.value.line == 1


@pytest.mark.parametrize("name", ["train.tsv", "train.csv", "train.jsonl"])
def test_utf8_bom_is_dropped_not_read_into_the_first_column(tmp_path, name):
    """Was: a BOM made the header 'label' unknown (tsv/csv) or the first line invalid JSON."""
    sep = "\t" if name.endswith(".tsv") else ","
    text = (
        '{"label": "a", "text": "one"}\n'
        if name.endswith("jsonl")
        else f"label{sep}text\na{sep}one\n"
    )
    root = _folder(tmp_path, name, codecs.BOM_UTF8 + text.encode())
    ds = load_dataset(str(root))
    assert ds.labels == ("a",) and ds.split("xx", "train")[0].text == "one"


@pytest.mark.parametrize(
    "line", ["[" * 100_000, "1" * 5000, '{"label": "a", "text": ' + "[" * 100_000]
)
def test_jsonl_nesting_or_long_integer_is_a_data_error(tmp_path, line):
    """Was: RecursionError (deep nesting) or ValueError (int past 4300 digits) escaping."""
    root = _folder(tmp_path, "train.jsonl", (line + "\n").encode())
    with pytest.raises(DataError, match="invalid JSON") as info:
        load_dataset(str(root))
    assert info.value.path.endswith("train.jsonl") and info.value.line == 1
    ds = load_dataset(
        str(
            _folder(
                tmp_path / "skip",
                "train.jsonl",
                (line + '\n{"label": "a", "text": "t"}\n').encode(),
            )
        ),
        on_bad_rows="skip",
    )
    assert ds.sizes()["xx"]["train"] == 1


def test_superscript_digit_column_is_not_taken_as_an_index(tmp_path):
    """Was: '²'.isdigit() made the file headerless, then int('²') raised ValueError."""
    root = _folder(tmp_path, "train.tsv", "²\tlabel\nx\ta\n".encode())
    ds = load_dataset(str(root), columns={"text": "²", "label": "label"})
    assert ds.split("xx", "train")[0].text == "x"
