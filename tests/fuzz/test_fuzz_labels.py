"""A folder source's labels.txt under random input: it defines the label set exactly as
listed (one per line, blank lines ignored) or fails with a DataError naming the file."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

import pytest
from fuzz_helpers import assert_names_file, tried
from hypothesis import given
from hypothesis import strategies as st

from fedlingua.data import DataError, load_dataset

label = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=12,
).filter(lambda s: s == s.strip() and "\t" not in s and '"' not in s)


def _write_folder(root: Path, labels_bytes: bytes, rows: list[str]) -> None:
    (root / "xx").mkdir()
    (root / "xx" / "labels.txt").write_bytes(labels_bytes)
    body = "".join(f"{y}\ttext {i}\n" for i, y in enumerate(rows))
    for split in ("train", "test"):
        (root / "xx" / f"{split}.tsv").write_text("label\ttext\n" + body, encoding="utf-8")


@given(
    labels=st.lists(label, min_size=1, max_size=6, unique=True),
    blank=st.lists(st.sampled_from(["", " ", "\t", "  \t "]), max_size=3),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    data=st.data(),
)
def test_labels_txt_defines_the_label_set_as_listed(labels, blank, newline, bom, data):
    tried("labels")
    lines = list(labels)
    for extra in blank:  # blank lines anywhere
        lines.insert(data.draw(st.integers(0, len(lines))), extra)
    text = newline.join(lines) + data.draw(st.sampled_from(["", newline]))
    rows = data.draw(st.lists(st.sampled_from(labels), min_size=1, max_size=5))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_folder(root, (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"), rows)
        ds = load_dataset(str(root))
    assert ds.labels == tuple(labels)
    assert [ds.labels[ex.label] for ex in ds.split("xx", "train")] == rows


@given(
    content=st.binary(max_size=80)
    | st.lists(st.sampled_from(["a", "b", "a", "", " ", "\x00", "é", "\ufeffa"]), max_size=6).map(
        lambda ls: "\n".join(ls).encode("utf-8")
    )
    | st.tuples(
        st.lists(st.sampled_from(["a", "b", "ç", "中"]), max_size=4),
        st.sampled_from(["latin-1", "utf-16", "utf-16-be", "cp1252", "utf-8"]),
    ).map(lambda t: "\n".join(t[0]).encode(t[1], errors="replace")),
    rows=st.lists(st.sampled_from(["a", "b", "ç"]), min_size=1, max_size=4),
)
def test_odd_labels_txt_loads_or_raises_data_error_naming_it(content, rows):
    tried("labels")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_folder(root, content, rows)
        try:
            ds = load_dataset(str(root))
        except DataError as err:
            assert err.path is not None
            assert_names_file(err, err.path)
            return
    assert ds.labels and len(set(ds.labels)) == len(ds.labels)
    assert all(label and label == label.strip() for label in ds.labels)


# ---- regressions (deterministic) ------------------------------------------------------------
def test_latin1_labels_txt_is_a_data_error_naming_it(tmp_path):
    """Was: UnicodeDecodeError from Path.read_text."""
    _write_folder(tmp_path, "a\nç\n".encode("latin-1"), ["a"])
    with pytest.raises(DataError, match="not UTF-8") as info:
        load_dataset(str(tmp_path))
    assert info.value.path.endswith("labels.txt") and info.value.line == 2


def test_bom_in_labels_txt_is_not_part_of_the_first_label(tmp_path):
    """Was: the first label read as '\\ufeffa', so rows labelled 'a' were 'unknown'."""
    _write_folder(tmp_path, codecs.BOM_UTF8 + b"a\nb\n", ["a", "b"])
    assert load_dataset(str(tmp_path)).labels == ("a", "b")


def test_blank_label_cell_is_a_data_error_not_a_class(tmp_path):
    """Was: without labels.txt a blank label cell made a class named ''."""
    (tmp_path / "xx").mkdir()
    for split in ("train", "test"):
        (tmp_path / "xx" / f"{split}.tsv").write_text("label\ttext\na\tone\n \ttwo\n")
    with pytest.raises(DataError, match="empty label") as info:
        load_dataset(str(tmp_path))
    assert info.value.line == 3 and info.value.path.endswith("train.tsv")
    assert load_dataset(str(tmp_path), on_bad_rows="skip").labels == ("a",)
