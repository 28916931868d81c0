"""Using a trained run: `fedlingua predict` (stdin, jsonl, --text), `evaluate --data` on a
folder of new languages (zero-shot), labels matched by name, and loading without data."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from fedlingua.cli import main
from fedlingua.data import load_dataset
from fedlingua.engine import evaluate_run, run


@pytest.fixture(scope="module")
def fed_run(tmp_path_factory):
    """A finished 1-round federated tiny run (model named 'tiny': every load rebuilds it)."""
    from fedlingua.config import RunConfig

    out = tmp_path_factory.mktemp("runs")
    cfg = RunConfig.load(
        overrides=[
            "model.name=tiny",
            "data.languages=fr,sw,lg",
            "data.max_train_per_client=48",
            "data.max_eval_per_language=32",
            "data.max_length=24",
            "federation.rounds=1",
            "method.num_virtual_tokens=4",
            "method.encoder_hidden_size=16",
            "threads=1",
            "progress=false",
            f"output_dir={out}",
            "name=fed",
        ]
    )
    return run(cfg, log=lambda _: None)["run_dir"]


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_run_saves_labels_and_pictures_linked_from_the_report(fed_run):
    from pathlib import Path

    folder = Path(fed_run)
    assert json.loads((folder / "labels.json").read_text()) == [
        "language",
        "territory",
        "currency",
        "script",
    ]
    for name in ("curves.png", "languages.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
        assert f"]({name})" in (folder / "report.md").read_text()


def test_predict_reads_stdin_lines_and_writes_json_lines(fed_run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Kifaransa\n\ndola ya Marekani\n"))
    assert main(["predict", fed_run, "--lang", "sw", "--top-k", "2"]) == 0
    rows = _jsonl(capsys.readouterr().out)
    assert [r["text"] for r in rows] == ["Kifaransa", "dola ya Marekani"]
    assert all(r["lang"] == "sw" and len(r["probabilities"]) == 2 for r in rows)
    assert all(r["label"] == next(iter(r["probabilities"])) for r in rows)


def test_predict_on_a_jsonl_file_matches_the_runs_own_test_scores(fed_run, tmp_path, capsys):
    """Predictions on the test rows, written as a file, reproduce the run's accuracy."""
    from fedlingua.config import RunConfig
    from fedlingua.experiment import evaluation_rows

    cfg = RunConfig.load(f"{fed_run}/config.toml")
    ds = load_dataset("cldr", languages=["fr", "sw"])
    path = tmp_path / "in.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for lang in ("fr", "sw"):
            for ex in evaluation_rows(ds, lang, "test", cfg):
                row = {"text": ex.text, "label": ds.labels[ex.label], "lang": lang}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", fed_run, "--input", str(path), "--output", str(out)]) == 0
    rows = _jsonl(out.read_text(encoding="utf-8"))
    expected = evaluate_run(fed_run)
    for lang in ("fr", "sw"):
        mine = [r["label"] == r["gold"] for r in rows if r["lang"] == lang]
        assert np.mean(mine) == pytest.approx(expected[lang]["accuracy"])
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    assert "written to" in capsys.readouterr().err


def test_predict_needs_a_language_for_a_monolingual_run(tmp_path, tiny_config, capsys):
    cfg = tiny_config(tmp_path, name="mono", paradigm="monolingual", federation__rounds=1)
    cfg.model.name = "tiny"
    run_dir = run(cfg, log=lambda _: None)["run_dir"]
    assert main(["predict", run_dir, "--text", "Kifaransa"]) == 2
    assert "--lang" in capsys.readouterr().err
    assert main(["predict", run_dir, "--text", "Kifaransa", "--lang", "de"]) == 2
    assert "no model for language 'de'" in capsys.readouterr().err
    assert main(["predict", run_dir, "--text", "Kifaransa", "--lang", "sw"]) == 0
    assert _jsonl(capsys.readouterr().out)[0]["lang"] == "sw"


def _write_folder(root, languages, *, rename=None):
    """A folder dataset <root>/<lang>/{train,test}.tsv of real CLDR names."""
    ds = load_dataset("cldr", languages=languages)
    for lang in languages:
        (root / lang).mkdir(parents=True)
        for split in ("train", "test"):
            rows = ["name\ttype"] + [
                f"{ex.text}\t{(rename or {}).get(ds.labels[ex.label], ds.labels[ex.label])}"
                for ex in ds.split(lang, split)[:40]
            ]
            (root / lang / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_evaluate_on_a_folder_of_new_languages(fed_run, tmp_path, capsys):
    folder = _write_folder(tmp_path / "new", ["ha", "yo"])
    argv = ["evaluate", fed_run, "--data", str(folder), "--columns", "text=name,label=type"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["ha", "yo"]
    assert all("accuracy" in line and "macro-F1" in line and "recall:" in line for line in lines)

    from fedlingua.inference import evaluate_on, load

    scores = evaluate_on(
        load(fed_run), str(folder), languages=["yo"], columns={"text": "name", "label": "type"}
    )
    assert list(scores) == ["yo"] and scores["yo"]["n"] == 40
    assert set(scores["yo"]["recall"]) == {"language", "territory", "currency", "script"}


def test_evaluate_refuses_labels_the_model_does_not_know(fed_run, tmp_path, capsys):
    folder = _write_folder(tmp_path / "odd", ["ha"], rename={"currency": "money"})
    argv = ["evaluate", fed_run, "--data", str(folder), "--columns", "text=name,label=type"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "labels the model does not know: ['money']" in err


def test_evaluate_without_data_keeps_scoring_the_runs_test_split(fed_run, capsys):
    assert main(["evaluate", fed_run]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == ["fr", "sw", "lg"]


def test_old_runs_take_labels_from_results(fed_run, tmp_path):
    import shutil

    from fedlingua.inference import run_labels

    old = tmp_path / "old"
    shutil.copytree(fed_run, old)
    (old / "labels.json").unlink()
    assert run_labels(old) == ("language", "territory", "currency", "script")
    (old / "results.json").unlink()
    assert run_labels(old) == ("language", "territory", "currency", "script")  # from the data
