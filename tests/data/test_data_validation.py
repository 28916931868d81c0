"""Bad input never passes silently: each problem names file, line and column, or is skipped
and counted with on_bad_rows="skip"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedlingua.data import DataError, format_summary, load_dataset, summarize

HEADER = "label\ttext\n"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def folder(root: Path, train: str, test: str = HEADER + "a\tone\nb\ttwo\n", lang="xx") -> Path:
    write(root, f"{lang}/train.tsv", train)
    write(root, f"{lang}/test.tsv", test)
    return root


def error_of(root: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(str(root), **kwargs)
    return info.value


def test_well_formed_folder_loads(tmp_path):
    root = folder(tmp_path, HEADER + 'a\t"quoted, with\ttab"\nb\tplain\n')
    ds = load_dataset(str(root))
    assert ds.labels == ("a", "b") and ds.task == "single"
    assert [ex.text for ex in ds.split("xx", "train")] == ["quoted, with\ttab", "plain"]
    assert ds.sizes()["xx"] == {"train": 2, "dev": 0, "test": 2}
    assert any("no dev split" in note for note in ds.notes)


def test_unknown_label_names_file_line_and_column(tmp_path):
    root = folder(tmp_path, HEADER + "a\tone\nb\ttwo\n", test=HEADER + "a\tx\nc\ty\n")
    err = error_of(root)
    assert err.path == str(root / "xx" / "test.tsv") and err.line == 3 and "'label'" in err.column
    assert "unknown label 'c'" in str(err) and "test.tsv" in str(err) and "line 3" in str(err)
    assert "labels.txt" in str(err)  # what to do


def test_labels_txt_is_enforced_on_train_too(tmp_path):
    root = folder(tmp_path, HEADER + "a\tone\nz\ttwo\n")
    write(root, "xx/labels.txt", "a\nb\n")
    err = error_of(root)
    assert err.line == 3 and "train.tsv" in str(err) and "unknown label 'z'" in str(err)


def test_missing_column_names_the_column(tmp_path):
    root = folder(tmp_path, "category\ttext\na\tone\n", test="category\ttext\nb\ttwo\n")
    err = error_of(root)
    assert err.line == 1 and "missing column 'label'" in str(err) and "train.tsv" in str(err)
    assert "columns=" in str(err)
    ds = load_dataset(str(tmp_path), columns={"label": "category"}, label_names=["a", "b"])
    assert ds.split("xx", "train")[0].text == "one"


def test_empty_text_is_an_error(tmp_path):
    root = folder(tmp_path, HEADER + "a\tone\nb\t   \n")
    err = error_of(root)
    assert err.line == 3 and "empty text" in str(err) and "'text'" in str(err)


def test_missing_required_split_names_the_file(tmp_path):
    write(tmp_path, "xx/train.tsv", HEADER + "a\tone\n")
    err = error_of(tmp_path)
    assert "no 'test' split" in str(err) and str(tmp_path / "xx" / "test.tsv") in str(err)


def test_wrong_field_count_csv_quoting(tmp_path):
    root = folder(tmp_path, HEADER + "a\tone\nb\ttwo\textra\na\tthree\n")
    err = error_of(root)
    assert err.line == 3 and "expected 2 fields, found 3" in str(err) and err.column == "3"


def test_line_numbers_count_physical_lines_of_multiline_rows(tmp_path):
    root = folder(tmp_path, HEADER + 'a\t"line one\nline two\nline three"\nb\n')
    err = error_of(root)
    assert err.line == 5 and "found 1" in str(err) and "'text'" in err.column


def test_malformed_quoting_is_reported(tmp_path):
    root = folder(tmp_path, HEADER + 'a\t"closed" then text\nb\tok\n')
    err = error_of(root)
    assert err.line == 2 and "malformed quoting" in str(err) and "quoting='none'" in str(err)
    ds = load_dataset(str(root), quoting="none")
    assert ds.split("xx", "train")[0].text == '"closed" then text'


def test_headerless_plain_tsv_with_index_columns(tmp_path):
    write(tmp_path, "de/train.tsv", '"Twin" Peaks\tbody\tnews\nb\tc\tsports\n')
    write(tmp_path, "de/test.tsv", "x\ty\tnews\nbad row\tnews\n")
    cols = {"text": "0", "text_pair": "1", "label": "2"}
    err = error_of(tmp_path, columns=cols, quoting="none")
    assert err.line == 2 and "test.tsv" in str(err) and "expected 3 fields, found 2" in str(err)
    ds = load_dataset(str(tmp_path), columns=cols, quoting="none", on_bad_rows="skip")
    ex = ds.split("de", "train")[0]
    assert (ex.text, ex.text_pair, ds.task) == ('"Twin" Peaks', "body", "pair")
    assert ds.skipped == {str(tmp_path / "de" / "test.tsv"): 1}


def test_jsonl_bad_json_and_missing_key(tmp_path):
    good = json.dumps({"text": "hello", "label": "a"})
    write(tmp_path, "xx/train.jsonl", good + "\n{not json}\n")
    write(tmp_path, "xx/test.jsonl", good + "\n" + json.dumps({"text": "no label"}) + "\n")
    err = error_of(tmp_path)
    assert err.line == 2 and "invalid JSON" in str(err) and "train.jsonl" in str(err)
    assert err.column.startswith("2")
    write(tmp_path, "xx/train.jsonl", good + "\n")
    err = error_of(tmp_path)
    assert err.line == 2 and "missing key 'label'" in str(err) and "test.jsonl" in str(err)


def test_jsonl_integer_labels_index_label_names(tmp_path):
    rows = [{"sentence": "s1", "y": 0}, {"sentence": "s2", "y": 1}]
    write(tmp_path, "xx/train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write(tmp_path, "xx/test.jsonl", json.dumps({"sentence": "s3", "y": 7}) + "\n")
    kwargs = {"columns": {"text": "sentence", "label": "y"}, "label_names": ["neg", "pos"]}
    err = error_of(tmp_path, **kwargs)
    assert err.line == 1 and "out of range" in str(err)
    write(tmp_path, "xx/test.jsonl", json.dumps({"sentence": "s3", "y": 1}) + "\n")
    ds = load_dataset(str(tmp_path), **kwargs)
    assert ds.labels == ("neg", "pos") and ds.split("xx", "test")[0].label == 1


def test_csv_files_and_joined_text_columns(tmp_path):
    write(tmp_path, "xx/train.csv", 'title,body,y\nT,"b, 1",a\nU,b2,b\n')
    write(tmp_path, "xx/test.csv", "title,body,y\nV,b3,a\n")
    ds = load_dataset(str(tmp_path), columns={"text": "title+body", "label": "y"})
    assert [ex.text for ex in ds.split("xx", "train")] == ["T b, 1", "U b2"]


def test_labels_from_train_reject_unseen_test_labels(tmp_path):
    root = folder(tmp_path, HEADER + "a\tone\n", test=HEADER + "b\ttwo\n")
    err = error_of(root)
    assert "only labels seen in train are known" in str(err) and err.line == 2


def test_skip_mode_counts_bad_rows_per_file_and_summary_reports_them(tmp_path):
    root = folder(
        tmp_path,
        HEADER + "a\tone\nq\tunknown label\nb\t\nb\ttwo\nb\tthree\textra\n",
        test=HEADER + "a\tx\nb\ty\n",
    )
    write(root, "xx/labels.txt", "a\nb\n")
    ds = load_dataset(str(root), on_bad_rows="skip")
    assert [ex.text for ex in ds.split("xx", "train")] == ["one", "two"]
    assert ds.skipped == {str(root / "xx" / "train.tsv"): 3}
    assert any("skipped 3 bad row(s)" in note and "line 3" in note for note in ds.notes)
    text = format_summary(summarize(ds))
    assert "skipped bad rows" in text and "train.tsv: 3" in text


def test_on_bad_rows_must_be_known(tmp_path):
    with pytest.raises(ValueError, match="on_bad_rows"):
        load_dataset("cldr", on_bad_rows="ignore")


def test_two_files_for_one_split_is_an_error(tmp_path):
    root = folder(tmp_path, HEADER + "a\tone\n")
    write(root, "xx/train.jsonl", json.dumps({"text": "t", "label": "a"}) + "\n")
    err = error_of(root)
    assert "several files for split 'train'" in str(err)


def test_folder_options_are_rejected_for_builtin_and_presets():
    with pytest.raises(ValueError, match="columns apply to folder and hub sources"):
        load_dataset("cldr", columns={"text": "x"})
    with pytest.raises(ValueError, match="label_names"):
        load_dataset("sib200", label_names=["a"])
