"""Options of the federated optimization recipe: per-class results, early stopping,
personalization, logit adjustment and the per-language prior, the client optimizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedlingua.engine import evaluate_run, load_final_states, run
from fedlingua.evaluation import scores
from fedlingua.experiment import build
from fedlingua.report import RunDir
from fedlingua.training import label_prior, local_update

QUIET = dict(log=lambda line: None)


def _interrupted_after_round_1_and_resumed(tmp_path, tiny_backbone, tiny_config, kw) -> dict:
    """Results of run "cut": stopped by Ctrl-C after round 1, then resumed to its end."""

    def stop_after_round_1(line: str) -> None:
        if line.startswith("round 1"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(tmp_path, name="cut", **kw), backbone=tiny_backbone, log=stop_after_round_1)
    return run(None, resume=tmp_path / "cut", backbone=tiny_backbone, **QUIET)


def test_scores_give_recall_per_class_confusion_and_never_predicted_classes():
    gold = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 1, 1, 1, 0, 1])
    s = scores(preds, gold, ["a", "b", "c"])
    assert s["recall"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 1, 0]]
    assert s["never_predicted"] == ["c"]
    # a class absent from gold is neither recalled nor flagged
    s = scores(np.array([0, 0]), np.array([0, 0]), ["a", "b"])
    assert s["recall"] == {"a": 1.0, "b": None} and s["never_predicted"] == []


def test_early_stopping_stops_and_resumes_where_an_uninterrupted_run_stops(
    tmp_path, tiny_backbone, tiny_config
):
    kw = dict(
        federation__rounds=12,
        evaluation__select_on_dev=True,
        evaluation__patience=1,
        train__lr=0.3,
    )
    full = run(tiny_config(tmp_path, name="full", **kw), backbone=tiny_backbone, **QUIET)
    assert full["stopped_early"] and full["rounds_run"] < 12
    assert [p["round"] for p in full["curve"]] == list(range(1, full["rounds_run"] + 1))
    assert all("dev" in p for p in full["curve"])
    # interrupt the same run after round 1 and resume it: it stops where the other did
    resumed = _interrupted_after_round_1_and_resumed(tmp_path, tiny_backbone, tiny_config, kw)
    assert resumed["rounds_run"] == full["rounds_run"]
    assert resumed["languages"] == full["languages"]
    a, b = load_final_states(tmp_path / "full"), load_final_states(tmp_path / "cut")
    assert all(torch.equal(a["global"][k], b["global"][k]) for k in a["global"])
    # with min_rounds no model stops before that round
    held = run(
        tiny_config(tmp_path, name="held", evaluation__min_rounds=full["rounds_run"] + 2, **kw),
        backbone=tiny_backbone,
        **QUIET,
    )
    assert held["rounds_run"] >= full["rounds_run"] + 2


def test_stopped_monolingual_models_are_not_rescored_and_the_run_is_unchanged(
    tmp_path, tiny_backbone, tiny_config, monkeypatch
):
    from fedlingua.engine import loop
    from fedlingua.experiment import Coordinator

    scored: list[str] = []
    plain_evaluate = Coordinator.evaluate

    def counting(self, states, split="test", **kw):
        scored.extend(states)
        return plain_evaluate(self, states, split, **kw)

    monkeypatch.setattr(Coordinator, "evaluate", counting)
    kw = dict(
        paradigm="monolingual",
        federation__rounds=10,
        evaluation__select_on_dev=True,
        evaluation__patience=2,
        train__lr=0.1,
    )
    cached = run(tiny_config(tmp_path, name="cached", **kw), backbone=tiny_backbone, **QUIET)
    n_cached, scored[:] = len(scored), []
    # every model scored every round: the behaviour before stopped models' scores were kept
    monkeypatch.setattr(
        loop, "_evaluate_dev", lambda exp, states, active, p: exp.evaluate(states, "dev")
    )
    every = run(tiny_config(tmp_path, name="every", **kw), backbone=tiny_backbone, **QUIET)
    stops = [r for r in cached["selected_round"].values() if r + 1 < cached["rounds_run"]]
    assert stops, "the test needs a language whose model stops before the run does"
    assert n_cached < len(scored)
    for key in ("curve", "languages", "selected_round", "rounds_run"):
        assert cached[key] == every[key], key


def test_wall_time_counts_earlier_sittings_and_the_final_test_scoring(
    tmp_path, tiny_backbone, tiny_config
):
    kw = dict(federation__rounds=3, evaluation__select_on_dev=True, evaluation__personalize=2)
    t = _interrupted_after_round_1_and_resumed(tmp_path, tiny_backbone, tiny_config, kw)["time"]
    # round 1 ran in the first sitting; test scoring and personalization come after round 3
    assert t["final_s"] > 0
    assert t["wall_s"] >= t["train_s"] + t["evaluation_s"] + t["final_s"]


@pytest.mark.parametrize("paradigm", ["federated", "monolingual"])
def test_dev_selection_scores_test_once_for_the_models_of_their_best_dev_round(
    paradigm, tmp_path, tiny_backbone, tiny_config
):
    cfg = tiny_config(
        tmp_path, paradigm=paradigm, federation__rounds=5, evaluation__select_on_dev=True
    )
    res = run(cfg, backbone=tiny_backbone, **QUIET)
    records = RunDir(res["run_dir"]).metrics()
    assert all("dev" in r and "test" not in r for r in records)  # test is read once, at the end
    assert [p["round"] for p in res["curve"]] == [r["round"] for r in records]
    for lang, rnd in res["selected_round"].items():
        model = "global" if paradigm == "federated" else lang
        best = max(r["dev"][lang]["accuracy"] for r in records) if model == lang else None
        assert best is None or records[rnd - 1]["dev"][lang]["accuracy"] == best
    # the reported scores are those of the saved best models, scored afresh
    again = evaluate_run(res["run_dir"], "best", backbone=tiny_backbone)
    assert {k: v["accuracy"] for k, v in again.items()} == {
        k: v["accuracy"] for k, v in res["languages"].items()
    }


def test_personalized_and_prior_adjusted_scores_are_reported_apart(
    tmp_path, tiny_backbone, tiny_config
):
    plain = run(tiny_config(tmp_path, name="plain"), backbone=tiny_backbone, **QUIET)
    extra = run(
        tiny_config(
            tmp_path,
            name="extra",
            evaluation__personalize=2,
            evaluation__language_prior=True,
        ),
        backbone=tiny_backbone,
        **QUIET,
    )
    # the global model's numbers are untouched by the extra evaluations
    assert extra["languages"] == plain["languages"] and extra["averages"] == plain["averages"]
    assert extra["personalized"]["steps"] == 2 and extra["personalized"]["clients"] == 3
    assert set(extra["personalized"]["languages"]) == {"fr", "sw", "lg"}
    assert extra["personalized"]["compute_s"] > 0
    assert set(extra["prior_adjusted"]["languages"]) == {"fr", "sw", "lg"}
    report = (tmp_path / "extra" / "report.md").read_text()
    assert "personalized average accuracy" in report and "reported separately" in report


def test_language_prior_shifts_predictions_by_the_languages_own_label_distribution(
    tmp_path, tiny_backbone, tiny_config
):
    exp = build(tiny_config(tmp_path), backbone=tiny_backbone)
    state = exp.bench.get_state()
    lang = "lg"
    labels = [y for c in exp.clients if c.lang == lang for y in exp.train[c.client_id].labels]
    prior = label_prior(labels, exp.num_labels)
    assert torch.allclose(exp.log_prior(lang), torch.log(prior))
    # a head that outputs zeros everywhere: the prior alone decides -> its most likely class
    with torch.no_grad():
        for name, p in exp.bench.model.named_parameters():
            if p.requires_grad and "classifier" in name:
                p.zero_()
    zero = exp.bench.get_state()
    plain = exp.evaluate({"global": zero}, language_prior=False)[lang]
    adjusted = exp.evaluate({"global": zero}, language_prior=True)[lang]
    gold = np.asarray(exp.test[lang].labels)
    assert adjusted["accuracy"] == float(np.mean(gold == int(prior.argmax())))
    assert plain["n"] == adjusted["n"] and state is not None


def test_label_prior_is_smoothed_and_logit_adjustment_changes_the_update(
    tmp_path, tiny_backbone, tiny_config
):
    prior = label_prior([0, 0, 0, 1], 3)
    assert torch.allclose(prior, torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    exp = build(tiny_config(tmp_path), backbone=tiny_backbone)
    start, data = exp.bench.get_state(), exp.train["lg"]
    common = dict(epochs=1, batch_size=16, lr=1e-2, seed=0)
    plain = local_update(exp.bench, start, data, **common)
    adjusted = local_update(exp.bench, start, data, logit_adjustment=1.0, **common)
    sgd = local_update(exp.bench, start, data, optimizer="sgd", momentum=0.9, **common)
    again = local_update(exp.bench, start, data, **common)
    assert all(torch.equal(plain.state[k], again.state[k]) for k in start)
    assert any(not torch.equal(plain.state[k], adjusted.state[k]) for k in start)
    assert any(not torch.equal(plain.state[k], sgd.state[k]) for k in start)


def test_scaffold_with_kept_client_state_resumes_bit_exactly(tmp_path, tiny_backbone, tiny_config):
    kw = dict(
        federation__rounds=3,
        federation__strategy="scaffold",
        train__keep_optimizer_state=True,
        train__local_steps=2,
    )
    full = run(tiny_config(tmp_path, name="full", **kw), backbone=tiny_backbone, **QUIET)
    resumed = _interrupted_after_round_1_and_resumed(tmp_path, tiny_backbone, tiny_config, kw)
    a, b = load_final_states(tmp_path / "full"), load_final_states(tmp_path / "cut")
    assert all(torch.equal(a["global"][k], b["global"][k]) for k in a["global"])
    assert resumed["languages"] == full["languages"]
    # SCAFFOLD sends the control variate down and its change up: twice the plain payload
    plain = run(tiny_config(tmp_path, name="plain"), backbone=tiny_backbone, **QUIET)
    ratio = full["communication"]["bytes_up"] / plain["communication"]["bytes_up"]
    assert 1.8 < ratio * plain["rounds"] / full["rounds"] < 2.2


@pytest.mark.parametrize("strategy", ["fedavgm", "fedadam", "fedyogi"])
def test_server_optimizers_run_with_their_default_steps_and_resume(
    strategy, tmp_path, tiny_backbone, tiny_config
):
    from fedlingua.federation.strategies import make_strategy

    cfg = tiny_config(tmp_path, name=strategy, federation__strategy=strategy)
    # momentum's step multiplies the average update; the adaptive ones scale with the
    # clients' learning rate (at the prompt encoder's 1e-2: Flower's own 0.1 and 0.01)
    expected = {"fedavgm": (1.0, 1.0), "fedadam": (0.1, 5e-4), "fedyogi": (0.01, 5e-5)}
    for client_lr, want in zip((1e-2, 5e-5), expected[strategy], strict=True):
        built = make_strategy(cfg.federation, 3, client_lr=client_lr)
        step = getattr(built, "eta", getattr(built, "server_learning_rate", None))
        assert step == pytest.approx(want)
    results = run(cfg, backbone=tiny_backbone, **QUIET)
    assert results["strategy"] == strategy and results["rounds_run"] == 2
