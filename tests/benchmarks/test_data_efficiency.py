"""benchmarks/data_efficiency.py: where monolingual catches up, the language rule and the
results written from finished rows (fabricated run results: no model is trained)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from fedlingua.compare import _row_run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import data_efficiency as de  # noqa: E402
import harness  # noqa: E402


def test_crossing_is_the_first_size_where_monolingual_catches_up():
    points = [("8", 8, 0.60, 0.40), ("16", 16, 0.62, 0.55), ("32", 32, 0.64, 0.60)]
    points += [("64", 64, 0.66, 0.70), ("128", 128, 0.70, 0.69)]
    cross = de.crossing(points)
    assert cross["size"] == "64"
    # gaps +4 at 32 and -4 at 64: halfway on the log2 axis
    assert cross["at"] == pytest.approx(2**5.5)
    assert "catches up at 64" in cross["text"] and cross["ahead"] == "below"


def test_no_crossing_when_one_line_leads_over_the_whole_range():
    ahead = de.crossing([("8", 8, 0.6, 0.4), ("all", 700, 0.8, 0.7)])
    assert (
        ahead["size"] is None
        and "federated ahead at every size (+10.0 points at all)" in (ahead["text"])
    )
    behind = de.crossing([("8", 8, 0.4, 0.4), ("16", 16, 0.6, 0.5)])
    assert behind["size"] is None and "level or ahead from the smallest size (8" in behind["text"]
    assert (ahead["ahead"], behind["ahead"]) == ("all", "none")
    assert de.crossing([])["size"] is None and de.crossing([])["ahead"] is None


def test_masakhanews_languages_are_evenly_spaced_by_upstream_training_size():
    upstream = {  # the upstream train splits in ../shared/data
        "amh": 200, "eng": 300, "fra": 250, "hau": 350, "ibo": 1356, "lin": 608, "lug": 771,
        "orm": 1128, "pcm": 1060, "run": 1117, "sna": 1288, "som": 1021, "swa": 350,
        "tir": 300, "xho": 1032, "yor": 1433,
    }  # fmt: skip
    assert de.spread(upstream, 6) == ["amh", "tir", "lin", "xho", "orm", "yor"]
    assert de.spread({"a": 2, "b": 1}, 6) == ["b", "a"]


def test_sizes_run_coarse_to_fine_so_a_partial_run_spans_the_range():
    assert de.run_order(de.SIZES["sib200"]) == ["8", "32", "128", "16", "64"]
    assert de.run_order(de.SIZES["masakhanews"]) == ["8", "32", "128", "all", "16", "64"]


def _fake_row(runs: Path, size: str, row: str, acc: float, n: int) -> None:
    folder = runs / "sib200" / f"n{size}" / row.replace(":", "-")
    folder.mkdir(parents=True)
    langs = {x: {"accuracy": acc, "train_examples": n} for x in ("eng_Latn", "hau_Latn")}
    result = {
        "model": "e5-small",
        "averages": {"average": acc, "low_resource_average": acc - 0.1},
        "languages": langs,
        "selected_round": {"eng_Latn": 3, "hau_Latn": 7},
        "rounds_run": 11,
        "stopped_early": True,
        "time": {"wall_s": 600.0},
    }
    (folder / "results.json").write_text(json.dumps(result))


def test_results_come_from_finished_rows_and_list_the_pending_ones(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    accs = {"8": (0.60, 0.40, 0.70), "16": (0.62, 0.66, 0.72)}
    for size, row_accs in accs.items():
        for row, acc in zip(de.ROWS, row_accs, strict=True):
            _fake_row(runs, size, row, acc, int(size))
    table, pending = de.collect(runs, ["sib200"])
    assert sorted(table["sib200"]) == ["16", "8"] and "sib200 n=32 federated" in pending
    meta = {"sib200": {"languages": ["eng_Latn", "hau_Latn"], "low_resource": ["hau_Latn"]}}
    de.write_results(table, pending, meta, out, [])
    md = (out / "data_efficiency.md").read_text()
    assert (
        md.startswith("# Data efficiency")
        and "Command: `python benchmarks/data_efficiency.py`" in md
    )
    assert "**Seed 0 only**" in md and "**Pending (not yet run):** sib200 n=32 federated" in md
    assert "| 8 | 60.0 | 40.0 | 70.0 | +20.0 | 50.0 | 30.0 | 60.0 |" in md
    assert "Crossing (average): monolingual catches up at 16 examples per client" in md
    assert "| 16 | 3-7 / 11, 10.0 | 3-7 / 11, 10.0 | 3-7 / 11, 10.0 |" in md
    data = json.loads((out / "data_efficiency.json").read_text())
    assert data["crossings"]["sib200"]["average"]["size"] == "16"
    assert data["points"]["sib200"]["8"]["federated:prompt-encoder"]["languages"]["eng_Latn"] == 0.6
    assert (out / "data_efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_a_fresh_clone_reports_the_rows_its_results_file_records(tmp_path):
    """Run directories do not travel with the repository: a report written where some of
    them are absent takes those rows from the results file, so no finished point is lost."""
    runs, out = tmp_path / "runs", tmp_path / "results"
    for size, accs in {"8": (0.60, 0.40, 0.70), "16": (0.62, 0.66, 0.72)}.items():
        for row, acc in zip(de.ROWS, accs, strict=True):
            _fake_row(runs, size, row, acc, int(size))
    meta = {"sib200": {"languages": ["eng_Latn", "hau_Latn"], "low_resource": ["hau_Latn"]}}
    de.write_results(*de.collect(runs, ["sib200"]), meta, out, [])
    first = (out / "data_efficiency.md").read_text()
    assert "| 8 | 60.0 | 40.0 | 70.0 | +20.0 | 50.0 | 30.0 | 60.0 |" in first
    path = out / "data_efficiency.json"
    settings = {"recipe": de.RECIPE, "personalize": de.PERSONALIZE, "command": de.command([])}
    # another machine: size 8's run directories are gone, size 32 has just finished
    for row in de.ROWS:
        shutil.rmtree(runs / "sib200" / "n8" / row.replace(":", "-"))
        _fake_row(runs, "32", row, 0.75, 32)
    table, pending = de.collect(runs, ["sib200"], harness.recorded(path, **settings))
    assert sorted(table["sib200"]) == ["16", "32", "8"]
    assert table["sib200"]["8"][de.FEDERATED]["recorded"] is True
    assert "recorded" not in table["sib200"]["32"][de.FEDERATED]
    de.write_results(table, pending, meta, out, [])
    again = (out / "data_efficiency.md").read_text()
    assert "| 8 | 60.0 | 40.0 | 70.0 | +20.0 | 50.0 | 30.0 | 60.0 |" in again
    assert "| 32 | 75.0 | 75.0 | 75.0 |" in again
    assert "| 8 | 3-7 / 11, 10.0 | 3-7 / 11, 10.0 | 3-7 / 11, 10.0 |" in first
    assert "| 8 | 3-7 / 11, 10.0 | 3-7 / 11, 10.0 | 3-7 / 11, 10.0 |" in again
    # a file made with another recipe (or other --set overrides) supplies nothing
    assert harness.recorded(path, **settings | {"command": de.command(["model.name=tiny"])}) == {}
    assert harness.recorded(tmp_path / "absent.json") == {}


def test_a_row_run_or_recorded_with_other_settings_is_pending(tmp_path):
    """When a dev choice changes a row's settings (say the monolingual learning rate), the
    row's old run directory and its recorded point stop counting; the other rows stay."""
    runs, langs, low = tmp_path / "runs", ["eng_Latn", "hau_Latn"], ["hau_Latn"]

    def today(dataset: str, size: str):
        return de.size_config(dataset, size, langs, low, runs, [])

    def changed(dataset: str, size: str):
        cfg = today(dataset, size)
        cfg.compare.overrides[de.MONOLINGUAL] = [
            *cfg.compare.overrides[de.MONOLINGUAL],
            "train.lr=0.5",  # a learning rate no dev choice takes
        ]
        return cfg

    cfg = today("sib200", "8")
    for row in de.ROWS:
        _fake_row(runs, "8", row, 0.6, 8)
        row_cfg, rundir = _row_run(cfg, *row.split(":"))
        rundir.config_path.write_text(row_cfg.to_toml())
    table, pending = de.collect(runs, ["sib200"], None, today)
    assert sorted(table["sib200"]["8"]) == sorted(de.ROWS)
    mono = table["sib200"]["8"][de.MONOLINGUAL]
    assert mono["overrides"] == cfg.compare.overrides[de.MONOLINGUAL]
    assert not any(p.startswith("sib200 n=8 ") for p in pending)

    table_now, pending = de.collect(runs, ["sib200"], None, changed)
    assert sorted(table_now["sib200"]["8"]) == sorted(set(de.ROWS) - {de.MONOLINGUAL})
    assert "sib200 n=8 monolingual (run with other settings)" in pending

    # another machine: no run directory, only the points the results file recorded
    shutil.rmtree(runs / "sib200")
    points = {r: de.to_point(x) for r, x in table["sib200"]["8"].items()}
    recorded = {"points": {"sib200": {"8": points}}}
    kept, _ = de.collect(runs, ["sib200"], recorded, today)
    assert sorted(kept["sib200"]["8"]) == sorted(de.ROWS)
    # a sitting there runs only what the file does not keep with today's settings
    assert de.rows_to_run(runs, "sib200", "8", de.ROWS, recorded, today) == []
    assert de.rows_to_run(runs, "sib200", "8", de.ROWS, recorded, changed) == [de.MONOLINGUAL]
    assert de.rows_to_run(runs, "sib200", "16", de.ROWS, recorded, today) == de.ROWS
    kept, pending = de.collect(runs, ["sib200"], recorded, changed)
    assert de.MONOLINGUAL not in kept["sib200"]["8"]
    assert "sib200 n=8 monolingual (run with other settings)" in pending
    # a point recorded before points kept their overrides counts as run with today's
    legacy = {r: {k: v for k, v in p.items() if k != "overrides"} for r, p in points.items()}
    kept, _ = de.collect(runs, ["sib200"], {"points": {"sib200": {"8": legacy}}}, changed)
    assert sorted(kept["sib200"]["8"]) == sorted(de.ROWS)
