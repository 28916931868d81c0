"""benchmarks/paper_tables.py takes each dataset's recipe from that dataset's own dev
sweep: the best measured variant, its server step scaled to every method's learning rate."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import paper_tables  # noqa: E402
from recipe_sweep import table_recipe  # noqa: E402

LRS = {"prompt-encoder": 1e-2, "lora": 1e-3}


def test_without_a_sweep_every_row_keeps_the_default_recipe():
    recipe = table_recipe({})
    rows = paper_tables.row_overrides("xnli", 4, LRS, recipe)
    assert rows["federated:lora"] == {"train.lr": 1e-3}
    assert rows["federated:prompt-encoder"]["train.lr"] == 1e-2
    assert "federation.server_lr" not in rows["federated:prompt-encoder"]
    assert rows["monolingual:prompt-encoder"] == {
        "train.logit_adjustment": 0.0,
        "train.keep_optimizer_state": True,
    }


def test_the_best_variant_on_dev_sets_every_federated_row_and_the_monolingual_lr():
    rows = {
        "fedadam-adamw-la0.5": {"dev_average": 0.60},
        "fedadam0.03-adamw-la0.5": {"dev_average": 0.70},
        "fedadam-adamw-la1-pers8": {"dev_average": 0.65},  # counts as its base recipe
        "mono-adamw-keep": {"dev_average": 0.50},
        "mono-adamw-keep-3e-3": {"dev_average": 0.55},
        "fedavg-adamw": {"dev_average": 0.90},  # not a table variant: ignored
    }
    recipe = table_recipe(rows)
    assert recipe["federated"]["candidate"] == "fedadam0.03-adamw-la0.5"
    assert set(recipe["federated"]["measured"]) == {
        "fedadam-adamw-la0.5",
        "fedadam0.03-adamw-la0.5",
        "fedadam-adamw-la1",
    }
    table = paper_tables.row_overrides("masakhanews", 4, LRS, recipe)
    assert table["federated:prompt-encoder"]["federation.server_lr"] == 3 * 1e-2
    assert table["federated:lora"]["federation.server_lr"] == 3 * 1e-3
    assert table["monolingual:prompt-encoder"]["train.lr"] == 3e-3
    assert "federation.server_lr" not in table["centralized:prompt-encoder"]


def test_a_variant_replaces_the_default_only_once_the_default_is_measured_too():
    # one sitting measured only the other monolingual learning rate: no comparison yet
    half = table_recipe({"mono-adamw-keep-3e-3": {"dev_average": 0.55}})
    assert half["monolingual"]["candidate"] == "mono-adamw-keep"
    assert half["monolingual"]["measured"] == {"mono-adamw-keep-3e-3": 0.55}
    both = {"mono-adamw-keep-3e-3": {"dev_average": 0.55}, "mono-adamw-keep": {"dev_average": 0.5}}
    assert table_recipe(both)["monolingual"]["candidate"] == "mono-adamw-keep-3e-3"
    both["mono-adamw-keep"]["dev_average"] = 0.6
    assert table_recipe(both)["monolingual"]["candidate"] == "mono-adamw-keep"


def test_a_row_run_with_other_settings_is_set_aside_not_read(tmp_path):
    from fedlingua.config import RunConfig

    cfg = paper_tables.table_config("xnli", 0, ["sw"], 4)
    cfg.output_dir = str(tmp_path)
    row = tmp_path / cfg.name / "federated-prompt-encoder"
    row.mkdir(parents=True)
    (row / "config.toml").write_text(RunConfig().to_toml())  # another run's settings
    assert paper_tables.finished(cfg, "federated:prompt-encoder") is None
    paper_tables.set_aside_stale(cfg, ["federated:prompt-encoder", "monolingual:prompt-encoder"])
    assert not row.exists()
    assert (tmp_path / cfg.name / "federated-prompt-encoder.superseded-1" / "config.toml").exists()


def test_a_fedavg_variant_changes_the_strategy_of_every_federated_row():
    recipe = table_recipe(
        {"fedavg-adamw-la1": {"dev_average": 0.7}, "fedadam-adamw-la0.5": {"dev_average": 0.6}}
    )
    table = paper_tables.row_overrides("masakhanews", 4, LRS, recipe)
    for row in ("federated:prompt-encoder", "federated:lora"):
        assert table[row]["federation.strategy"] == "fedavg"
        assert table[row]["train.logit_adjustment"] == 1.0
        assert "federation.server_lr" not in table[row]
    assert table["monolingual:prompt-encoder"]["train.logit_adjustment"] == 0.0


def test_two_sittings_on_one_dataset_keep_each_others_rows(tmp_path, monkeypatch):
    import recipe_sweep as sweep

    monkeypatch.setattr(sweep, "RESULTS", tmp_path)
    monkeypatch.setattr(sweep, "RUNS", tmp_path / "runs")  # no run directories

    def row(name: str, dev: float) -> dict:
        return {
            "dev_average": dev,
            "dev_low_resource": dev,
            "recall_per_class": {},
            "never_predicted": {},
            "selected_round": 1,
            "rounds_run": 1,
            "wall_s": 1.0,
            "config_key": sweep._config_key("masakhanews-16", name),
        }

    # each sitting writes after its own candidate, from what the file holds just then
    sweep._write_merged("masakhanews-16", {"fedavg-adamw-la1": row("fedavg-adamw-la1", 0.7)})
    sweep._write_merged("masakhanews-16", {"fedadam-adamw-la1": row("fedadam-adamw-la1", 0.6)})
    kept = sweep._committed_results("masakhanews-16")
    assert set(kept["rows"]) == {"fedavg-adamw-la1", "fedadam-adamw-la1"}
    # the command at the top measures exactly those rows, in the sweep's order
    assert kept["command"] == (
        "python benchmarks/recipe_sweep.py masakhanews-16 --only fedavg-adamw-la1,fedadam-adamw-la1"
    )
    # a row measured on other settings (a stale config key) is dropped, not shown
    stale = kept["rows"]["fedadam-adamw-la1"] | {"config_key": "0" * 16}
    sweep.write_results("masakhanews-16", kept["rows"] | {"fedadam-adamw-la1": stale})
    assert set(sweep._measured_rows("masakhanews-16")) == {"fedavg-adamw-la1"}


def test_a_sitting_on_later_seeds_runs_only_the_stability_rows_and_reports_every_seed():
    every = paper_tables.ROWS
    assert paper_tables.rows_to_run(0, every) == every
    assert paper_tables.rows_to_run(2, every) == [
        r for r in every if r in paper_tables.STABILITY_ROWS
    ]
    assert paper_tables.reported_seeds([1, 2]) == [0, 1, 2]  # seed 0 stays the main one
    assert paper_tables.reported_seeds([2, 3]) == [0, 1, 2, 3]


def test_rows_still_improving_at_the_last_round_are_named():
    cap = paper_tables.ROUNDS
    rows = {
        "federated:lora": {"selected_round": cap},
        "federated:prompt-encoder": {"selected_round": cap - 3},
        "federated:full": {"selected_round": {"sw": cap, "ur": cap}},  # one model: its round
        "monolingual:prompt-encoder": {"selected_round": {"sw": cap, "ur": 2, "fr": cap}},
    }
    text = " ".join(paper_tables.at_the_cap(rows))
    assert "federated lora" in text and "prompt-encoder on 2 of 3 languages" in text
    assert "federated full," in text and "full on" not in text  # not "on 2 of 2 languages"
    assert "federated prompt-encoder" not in text
    assert paper_tables.at_the_cap({"federated:lora": {"selected_round": 1}}) == []


def test_a_table_rebuilds_from_its_results_file_without_run_directories(tmp_path, monkeypatch):
    """A fresh clone has the results file but no run directories: the report rebuilds the
    same table from the file, and a sitting runs only what the file does not keep."""
    from fedlingua.data import default_data_root, load_dataset

    if default_data_root() is None:
        pytest.skip("needs ../shared/data (SIB-200) or $FEDLINGUA_DATA_ROOT")
    pt = paper_tables
    langs, low = ["fra_Latn", "zho_Hans", "hau_Latn", "amh_Ethi"], ["hau_Latn", "amh_Ethi"]
    monkeypatch.setattr(pt, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(pt, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(pt, "SEEDS", [0, 1])
    monkeypatch.setattr(pt, "ROWS", pt.STABILITY_ROWS)
    monkeypatch.setattr(pt, "RECIPE", pt.RECIPE | {"model.name": "tiny", "federation.rounds": 1})
    budget = pt.BUDGETS["sib200"]["overrides"] | {
        "data.languages": langs,
        "data.max_eval_per_language": 16,
    }
    monkeypatch.setitem(pt.BUDGETS, "sib200", {"overrides": budget, "note": "a smoke table."})
    monkeypatch.setattr(pt.verdict, "update", lambda: None)  # the repository's READMEs stay
    ds = load_dataset("sib200", languages=langs)
    for seed in pt.SEEDS:
        pt.run_seed("sib200", seed, low, len(langs), pt.ROWS, {})
    pt.write_results("sib200", ds, pt.SEEDS, low)
    md = (pt.RESULTS / "sib200.md").read_text()
    data = json.loads((pt.RESULTS / "sib200.json").read_text())
    assert data["pending"] == []
    assert {k: set(v) for k, v in data["runs"].items()} == {r: {"0", "1"} for r in pt.ROWS}
    assert "personalized" in data["runs"]["federated:prompt-encoder"]["1"]

    shutil.rmtree(pt.RUNS)
    record = pt.table_record("sib200", low)
    cfg = pt.table_config("sib200", 1, low, len(langs))
    assert pt.to_run_here(cfg, pt.ROWS, record) == []
    pt.write_results("sib200", ds, pt.SEEDS, low)
    assert (pt.RESULTS / "sib200.md").read_text() == md

    # a row whose own settings changed since is pending again; the other rows stay
    monkeypatch.setattr(pt, "PERSONALIZE", pt.PERSONALIZE + 1)
    cfg = pt.table_config("sib200", 1, low, len(langs))
    assert pt.to_run_here(cfg, pt.ROWS, record) == ["federated:prompt-encoder"]
    pt.write_results("sib200", ds, pt.SEEDS, low)
    later = json.loads((pt.RESULTS / "sib200.json").read_text())
    fed = "federated:prompt-encoder"
    assert later["pending"] == [fed, f"{fed} seed 1"]
    assert later["runs"]["monolingual:prompt-encoder"] == data["runs"]["monolingual:prompt-encoder"]

    # a file written before it kept whole rows ("runs"): its rows still count, so a sitting
    # that reruns one row can report without the others' run directories
    monkeypatch.setattr(pt, "PERSONALIZE", pt.PERSONALIZE - 1)
    legacy = {k: v for k, v in data.items() if k != "runs"}
    (pt.RESULTS / "sib200.json").write_text(json.dumps(legacy))
    cfg = pt.table_config("sib200", 1, low, len(langs))
    assert pt.to_run_here(cfg, pt.ROWS, pt.table_record("sib200", low)) == []
    pt.write_results("sib200", ds, pt.SEEDS, low)
    rebuilt = (pt.RESULTS / "sib200.md").read_text()
    assert json.loads((pt.RESULTS / "sib200.json").read_text())["pending"] == []

    def averages(text: str) -> list[str]:
        start = text.index("## Averages")
        return text[start : text.index("\n\n", text.index("|", start))].splitlines()

    assert averages(rebuilt) == averages(md)
    assert "runs, 2 recorded without their run time not counted (one" in rebuilt  # seed 1
    assert "Federated minus monolingual average, per seed" in rebuilt
