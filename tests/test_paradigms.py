"""Whole runs on the tiny backbone: every method x paradigm trains, resumes, records what it did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fedlingua.config import METHODS, PARADIGMS, RunConfig
from fedlingua.engine import evaluate_run, load_final_states, run
from fedlingua.experiment import build


def _losses(results_dir) -> list[float]:
    lines = (results_dir / "metrics.jsonl").read_text().splitlines()
    rounds = [json.loads(x) for x in lines]
    return [
        sum(o["train_loss"] for o in r["federations"].values()) / len(r["federations"])
        for r in rounds
    ]


@pytest.mark.parametrize("paradigm", PARADIGMS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_and_paradigm_trains_and_its_loss_drops(
    tmp_path, tiny_backbone, tiny_config, paradigm, method
):
    lr = {"prompt-encoder": 1e-2, "soft-prompt": 5e-2, "lora": 1e-2, "full": 2e-3}[method]
    cfg = tiny_config(
        tmp_path,
        paradigm=paradigm,
        method__name=method,
        federation__rounds=3,
        train__lr=lr,
        train__local_epochs=2,
    )
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    losses = _losses(tmp_path / results["run_dir"].split("/")[-1])
    assert losses[-1] < losses[0], losses
    assert set(results["languages"]) == {"fr", "sw", "lg"}
    assert 0 <= results["averages"]["average"] <= 1
    comm = results["communication"]
    if paradigm == "federated":
        assert comm["bytes_up"] > 0 and comm["bytes_down"] > 0
    else:
        assert comm["bytes_total"] == 0


def test_run_directory_holds_everything_and_tensors_reload(tmp_path, tiny_backbone, tiny_config):
    cfg = tiny_config(tmp_path, name="r1")
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    d = tmp_path / "r1"
    for f in ("config.toml", "environment.json", "metrics.jsonl", "results.json", "report.md"):
        assert (d / f).exists(), f
    env = json.loads((d / "environment.json").read_text())
    assert env["seed"] == 0 and env["packages"]["torch"].startswith("2.13")
    assert len((d / "metrics.jsonl").read_text().splitlines()) == 2
    states = load_final_states(d)
    assert set(states) == {"global"}
    again = evaluate_run(d, backbone=tiny_backbone)
    for lang, s in results["languages"].items():
        assert again[lang]["accuracy"] == pytest.approx(s["accuracy"])
    assert "| fr |" in (d / "report.md").read_text()


def test_trainable_state_is_what_travels_and_is_counted(tmp_path, tiny_backbone, tiny_config):
    cfg = tiny_config(tmp_path, name="r")
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    state = load_final_states(tmp_path / "r")["global"]
    assert sum(t.numel() for t in state.values()) == results["parameters"]["trainable"]
    raw = sum(t.numel() * 4 for t in state.values())
    per_client = results["communication"]["bytes_up_per_client_round"]
    assert raw < per_client < raw * 1.2 + 4096  # serialized payload ~ the raw float32 tensors


def test_resume_after_interrupt_equals_uninterrupted_run(tmp_path, tiny_backbone, tiny_config):
    kw = dict(federation__rounds=3, federation__fraction=0.67, federation__client_dropout=0.3)
    full = run(tiny_config(tmp_path, name="full", **kw), backbone=tiny_backbone, log=lambda s: None)

    def stop_after_round_2(line: str) -> None:
        if line.startswith("round 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(tmp_path, name="cut", **kw), backbone=tiny_backbone, log=stop_after_round_2)
    resumed = run(None, resume=tmp_path / "cut", backbone=tiny_backbone, log=lambda s: None)
    a, b = load_final_states(tmp_path / "full"), load_final_states(tmp_path / "cut")
    assert all(torch.equal(a["global"][k], b["global"][k]) for k in a["global"])
    assert resumed["languages"] == full["languages"]
    assert resumed["failures"] == full["failures"]
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 3


def test_client_dropout_is_seeded_and_recorded(tmp_path, tiny_backbone, tiny_config):
    kw = dict(federation__rounds=4, federation__client_dropout=0.5)
    a = run(tiny_config(tmp_path, name="a", **kw), backbone=tiny_backbone, log=lambda s: None)
    b = run(tiny_config(tmp_path, name="b", **kw), backbone=tiny_backbone, log=lambda s: None)
    assert a["failures"] == b["failures"] and a["failures"], "p=0.5 over 12 draws should drop some"
    for failed in a["failures"].values():
        assert all("dropped out" in reason for reason in failed.values())


def test_simulated_clients_share_one_backbone(tmp_path, tiny_backbone, tiny_config):
    from fedlingua.engine.federations import build_federations, simulation_grid
    from fedlingua.experiment import coordinate

    cfg = tiny_config(tmp_path, data__clients_per_language=4)
    exp = build(cfg, backbone=tiny_backbone)
    bench = exp.bench
    grid = simulation_grid(exp)
    coord = coordinate(cfg, grid, backbone=tiny_backbone, bench=bench, expected=12)
    feds = build_federations(coord)
    assert len(list(feds["global"].grid.get_node_ids())) == 12
    # every node answers as one site, bound to the very same workbench
    handlers = list(grid._handlers.values())
    assert {id(h.bench) for h in handlers} == {id(bench)}
    assert len({h.site.client_id for h in handlers}) == 12
    # the per-client state is only the trainable tensors
    backbone_params = sum(p.numel() for p in tiny_backbone.encoder.parameters())
    assert bench.params.trainable < backbone_params / 5


def test_monolingual_and_centralized_use_the_same_initial_state(
    tmp_path, tiny_backbone, tiny_config
):
    from fedlingua.engine.federations import build_federations, simulated_coordinator

    inits = {}
    for paradigm in PARADIGMS:
        cfg = tiny_config(tmp_path, paradigm=paradigm)
        exp = build(cfg, backbone=tiny_backbone)
        for name, fed in build_federations(simulated_coordinator(exp)).items():
            inits[(paradigm, name)] = fed.state
    first = next(iter(inits.values()))
    for state in inits.values():
        assert all(torch.equal(state[k], first[k]) for k in first)
    assert {k for k in inits if k[0] == "monolingual"} == {
        ("monolingual", x) for x in ("fr", "sw", "lg")
    }


@pytest.mark.parametrize("select_on_dev", [False, True])
def test_monolingual_matrix_scores_every_model_on_every_language(
    tmp_path, tiny_backbone, tiny_config, select_on_dev
):
    cfg = tiny_config(tmp_path, paradigm="monolingual", federation__rounds=3, train__lr=3e-2)
    cfg.evaluation.matrix = True
    cfg.evaluation.select_on_dev = select_on_dev
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    if select_on_dev:  # some model is reported at an earlier round than its last
        assert min(results["selected_round"].values()) < results["rounds_run"]
    matrix = results["matrix"]
    assert set(matrix) == {"fr", "sw", "lg"}
    assert all(set(row) == {"fr", "sw", "lg"} for row in matrix.values())
    # the diagonal is the language's own score: the matrix scores the reported models
    for lang in matrix:
        assert matrix[lang][lang] == pytest.approx(results["languages"][lang]["accuracy"])


def test_transfer_matrix_scores_monolingual_models_on_languages_no_model_serves(
    tmp_path, tiny_backbone, tiny_config
):
    cfg = tiny_config(tmp_path, paradigm="monolingual", federation__rounds=3, train__lr=3e-2)
    cfg.data.languages, cfg.data.zero_shot_languages = ["fr", "sw"], ["lg"]
    cfg.evaluation.select_on_dev = True
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    assert set(results["languages"]) == {"fr", "sw"}  # no model serves lg: not scored
    exp = build(cfg, backbone=tiny_backbone)
    best = load_final_states(results["run_dir"], "best")
    dev = exp.matrix(best, "dev", ["lg", "fr"])
    test = exp.matrix(best, "test", ["fr", "sw"])
    assert set(dev) == {"fr", "sw"} and all(set(row) == {"lg", "fr"} for row in dev.values())
    # each model at its best dev round: the dev score that selected it, the test score reported
    records = [json.loads(x) for x in Path(results["run_dir"], "metrics.jsonl").open()]
    for lang in ("fr", "sw"):
        selected = records[results["selected_round"][lang] - 1]["dev"][lang]["accuracy"]
        assert exp.matrix(best, "dev", [lang])[lang][lang] == pytest.approx(selected)
        assert test[lang][lang] == pytest.approx(results["languages"][lang]["accuracy"])
    with pytest.raises(ValueError, match="not evaluated"):
        exp.matrix(best, "dev", ["de"])


def test_zero_shot_languages_take_no_part_in_selecting_the_best_round(
    tmp_path, tiny_backbone, tiny_config
):
    cfg = tiny_config(tmp_path, federation__rounds=6, train__lr=0.1)
    cfg.data.languages, cfg.data.zero_shot_languages = ["fr", "sw"], ["lg"]
    cfg.evaluation.select_on_dev = True
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    records = [json.loads(x) for x in Path(results["run_dir"], "metrics.jsonl").open()]
    assert all("lg" in r["dev"] for r in records)  # scored on dev every round, for the curves

    def seen(r):
        return (r["dev"]["fr"]["accuracy"] + r["dev"]["sw"]["accuracy"]) / 2

    def every(r):
        return sum(v["accuracy"] for v in r["dev"].values()) / len(r["dev"])

    first_best = lambda score: max(records, key=lambda r: (score(r), -r["round"]))["round"]  # noqa: E731
    assert first_best(seen) != first_best(every)  # lg's dev set would pick another round
    assert set(results["selected_round"].values()) == {first_best(seen)}


def test_zero_shot_and_low_resource_groups_are_averaged(tmp_path, tiny_backbone, tiny_config):
    cfg = tiny_config(tmp_path, federation__rounds=1)
    cfg.data.languages = ["fr", "sw"]
    cfg.data.zero_shot_languages = ["lg"]
    cfg.data.low_resource = ["sw", "lg"]
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    langs = results["languages"]
    assert set(langs) == {"fr", "sw", "lg"} and langs["lg"]["train_examples"] == 0
    avg = results["averages"]
    assert avg["zero_shot_average"] == pytest.approx(langs["lg"]["accuracy"])
    assert avg["low_resource_average"] == pytest.approx(
        (langs["sw"]["accuracy"] + langs["lg"]["accuracy"]) / 2
    )
    assert avg["client_average"] == pytest.approx(
        (langs["fr"]["accuracy"] + langs["sw"]["accuracy"]) / 2
    )


def test_bf16_autocast_trains_with_fp32_trainable_state(tmp_path, tiny_backbone, tiny_config):
    cfg = tiny_config(tmp_path, federation__rounds=3, train__lr=1e-2, train__local_epochs=2)
    cfg.model.precision = "bf16"
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    assert results["precision"] == "bf16"
    losses = _losses(tmp_path / results["run_dir"].split("/")[-1])
    assert losses[-1] < losses[0], losses
    state = load_final_states(results["run_dir"])["global"]
    assert all(t.dtype == torch.float32 for t in state.values())


def test_compare_runs_rows_once_and_refuses_a_changed_config(tmp_path, tiny_backbone, tiny_config):
    from fedlingua.compare import compare
    from fedlingua.config import ConfigError
    from fedlingua.models import load_backbone

    cfg = tiny_config(tmp_path, name="cmp", federation__rounds=2)
    cfg.model.name = "tiny"
    logs: list[str] = []
    rows, table = compare(cfg, ["federated:prompt-encoder", "monolingual:lora"], log=logs.append)
    assert [r["paradigm"] for r in rows] == ["federated", "monolingual"]
    assert "| federated prompt-encoder |" in table and "0 (local)" in table
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "![compare](compare.png)" in md and "![compare-curves](compare-curves.png)" in md
    for png in ("compare.png", "compare-curves.png"):
        assert (tmp_path / "cmp" / png).read_bytes()[:4] == b"\x89PNG"
    # the learning curves table: one line per round, one column per row
    curve = [line for line in md.splitlines() if line.startswith("| 2 |")]
    assert len(curve) == 1 and curve[0].count("|") == 4
    want = f"{100 * rows[0]['curve'][1]['test']:.1f}"
    assert curve[0].split("|")[2].strip() == want
    again, _ = compare(cfg, ["federated:prompt-encoder"], log=logs.append)
    assert again[0]["languages"] == rows[0]["languages"]
    assert any("already done" in line for line in logs)
    cfg.federation.rounds = 3
    with pytest.raises(ConfigError, match="different config"):
        compare(cfg, ["federated:prompt-encoder"], log=logs.append)
    assert load_backbone("tiny") is not None


def test_compare_rows_and_per_row_overrides_come_from_the_config(
    tmp_path, tiny_backbone, tiny_config
):
    from fedlingua.compare import compare
    from fedlingua.config import ConfigError

    cfg = tiny_config(tmp_path, name="rows", federation__rounds=1, train__logit_adjustment=1.0)
    cfg.model.name = "tiny"
    cfg.compare.rows = ["federated:prompt-encoder", "monolingual:prompt-encoder"]
    cfg.compare.overrides = {"monolingual:prompt-encoder": ["train.logit_adjustment=0"]}
    rows, _ = compare(cfg, log=lambda line: None)
    assert [r["paradigm"] for r in rows] == ["federated", "monolingual"]
    stored = {
        r["paradigm"]: RunConfig.load(Path(r["run_dir"]) / "config.toml").train.logit_adjustment
        for r in rows
    }
    assert stored == {"federated": 1.0, "monolingual": 0.0}
    cfg.compare.overrides = {"centralized:lora": ["train.lr=0.1"]}
    with pytest.raises(ConfigError, match="not compared"):
        compare(cfg, log=lambda line: None)


def test_compare_reads_back_a_row_run_alongside_other_rows_when_run_alone(
    tmp_path, tiny_backbone, tiny_config
):
    """A row's stored config lists the overrides of the rows compared with it; comparing
    fewer rows (their overrides then left out) reads it back, a changed setting does not."""
    from fedlingua.compare import compare, stored_row_matches
    from fedlingua.config import ConfigError

    cfg = tiny_config(tmp_path, name="split", federation__rounds=1)
    cfg.model.name = "tiny"
    both = {
        "federated:prompt-encoder": ["train.lr=0.02"],
        "monolingual:prompt-encoder": ["train.logit_adjustment=0"],
    }
    cfg.compare.overrides = both
    rows, _ = compare(cfg, list(both), log=lambda line: None)
    logs: list[str] = []
    cfg.compare.overrides = {"federated:prompt-encoder": ["train.lr=0.02"]}
    again, _ = compare(cfg, ["federated:prompt-encoder"], log=logs.append)
    assert any("already done" in line for line in logs)
    assert again[0]["languages"] == rows[0]["languages"]
    assert stored_row_matches(cfg, "federated", "prompt-encoder")
    assert not stored_row_matches(cfg, "centralized", "prompt-encoder")  # never run
    cfg.compare.overrides = {"federated:prompt-encoder": ["train.lr=0.03"]}
    assert not stored_row_matches(cfg, "federated", "prompt-encoder")
    with pytest.raises(ConfigError, match="different config"):
        compare(cfg, ["federated:prompt-encoder"], log=lambda line: None)


def test_federation_of_one_client_equals_local_training(tmp_path, tiny_backbone, tiny_config):
    """FedAvg over a single client must reproduce that client's local model exactly."""
    kw = dict(federation__rounds=3, train__local_epochs=1)
    fed = tiny_config(tmp_path, name="fed", **kw)
    # local training replaces the model whatever the (federated) strategy says
    mono = tiny_config(tmp_path, name="mono", paradigm="monolingual", **kw)
    mono.federation.strategy = "fedadam"
    for cfg in (fed, mono):
        cfg.data.languages = ["sw"]
        run(cfg, backbone=tiny_backbone, log=lambda s: None)
    a = load_final_states(tmp_path / "fed")["global"]
    b = load_final_states(tmp_path / "mono")["sw"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_local_steps_bound_each_client_update(tmp_path, tiny_backbone, tiny_config):
    from flwr.app import RecordDict

    from fedlingua.federation.client import ClientSite, handle_train, train_config
    from fedlingua.federation.payload import ARRAYS_KEY, CONFIG_KEY, state_to_record

    cfg = tiny_config(tmp_path)
    exp = build(cfg, backbone=tiny_backbone)
    bench = exp.bench
    site = ClientSite("fr", "fr", exp.train["fr"])  # 48 examples = 3 batches of 16
    for steps, expected in ((0, 3), (2, 2), (7, 7)):
        cfg.train.local_steps = steps or None
        config = train_config(cfg, lr=1e-3)
        config["server-round"] = 1
        content = RecordDict({ARRAYS_KEY: state_to_record(bench.get_state()), CONFIG_KEY: config})
        reply = handle_train(bench, site, content)
        assert reply["metrics"]["steps"] == expected


def test_onednn_fp32_run_matches_plain_fp32(tmp_path, tiny_backbone, tiny_config):
    from fedlingua.runtime import ONEDNN_MAX_ERROR, onednn_fp32_error

    if onednn_fp32_error() > ONEDNN_MAX_ERROR:
        pytest.skip("oneDNN fp32 products are not fp32-accurate on this CPU (falls back)")
    finals = {}
    for precision in ("fp32", "fp32-onednn"):
        cfg = tiny_config(tmp_path, name=precision, federation__rounds=2, train__lr=1e-2)
        cfg.model.precision = precision
        results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
        assert results["precision"] == precision
        finals[precision] = load_final_states(results["run_dir"])["global"]
    for name, tensor in finals["fp32"].items():
        torch.testing.assert_close(finals["fp32-onednn"][name], tensor, rtol=1e-4, atol=1e-5)
