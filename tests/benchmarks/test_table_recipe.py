"""benchmarks/paper_tables.py takes each dataset's recipe from that dataset's own dev
sweep: the best measured variant, its server step scaled to every method's learning rate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


def test_a_report_never_drops_rows_only_the_results_file_records(tmp_path, monkeypatch):
    """Run directories stay on the machine that ran them; the results file is what the
    repository keeps. A report where some recorded rows have no run directory must not
    overwrite the file (it keeps too little of a row to rebuild the table)."""
    pt = paper_tables
    monkeypatch.setattr(pt, "RESULTS", tmp_path)
    lrs, _ = pt.chosen_lrs()
    low = ["hau_Latn"]
    settings = {
        "recipe": pt.RECIPE,
        "row_overrides": pt.row_overrides("sib200", 2, lrs, pt.chosen_recipe("sib200")),
        "budget": pt.BUDGETS["sib200"],
        "low_resource": low,
    }
    fed = "federated:prompt-encoder"
    record = settings | {
        "rows": [{"paradigm": "federated", "method": "prompt-encoder", "seed": 0}],
        "stability": {fed: [{"seed": 0}, {"seed": 1}]},
    }
    (tmp_path / "sib200.json").write_text(json.dumps(record))
    here = {fed: {"seed": 0}}
    assert pt.recorded_elsewhere("sib200", 2, low, here, {fed: [here[fed]]}) == [f"{fed} seed 1"]
    both = {fed: [here[fed], {"seed": 1}]}
    assert pt.recorded_elsewhere("sib200", 2, low, here, both) == []
    # a file made with other settings holds nothing the table would still show
    assert pt.recorded_elsewhere("sib200", 2, ["eng_Latn"], {}, {}) == []
