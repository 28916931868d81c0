"""Differential privacy wiring: config checks, Flower's wrappers as fedlingua uses them, runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedlingua.config import ConfigError, FederationConfig, PrivacyConfig, RunConfig
from fedlingua.engine import load_final_states, run
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import ARRAYS_KEY, METRICS_KEY, state_to_record
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy
from fedlingua.privacy.accounting import calibrate_noise, gaussian_epsilon
from fedlingua.privacy.dp import DPPlan


# ---- config ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["privacy.dp='central-fixed'"], "set exactly one of privacy.epsilon"),
        (
            ["privacy.dp='local'", "privacy.epsilon=1", "privacy.noise_multiplier=1"],
            "set exactly one",
        ),
        (["privacy.epsilon=4"], "need privacy.dp"),
        (["privacy.dp='central'", "privacy.epsilon=4"], "privacy.dp='central'"),
        (
            ["privacy.dp='central-fixed'", "privacy.epsilon=4", "paradigm='monolingual'"],
            "paradigm='federated'",
        ),
        (
            ["privacy.dp='central-fixed'", "privacy.epsilon=4", "federation.strategy='fedmedian'"],
            "averaging strategy",
        ),
        (["privacy.dp='local'", "privacy.epsilon=4", "privacy.clipping='client'"], "central"),
        (["privacy.dp='central-fixed'", "privacy.epsilon=-1"], "epsilon must be > 0"),
        (["privacy.delta=0"], "privacy.delta"),
        (
            ["privacy.secure_aggregation=true", "privacy.dp='central-fixed'", "privacy.epsilon=4"],
            "not supported yet",
        ),
    ],
)
def test_invalid_privacy_configs_say_what_to_change(overrides, message):
    with pytest.raises(ConfigError, match=message):  # DP's strategy, FedAvg, unless said
        RunConfig.load(None, ["federation.strategy='fedavg'", *overrides])


def test_dp_under_the_default_server_optimizer_says_to_choose_fedavg():
    with pytest.raises(ConfigError, match="averaging strategy.*'fedadam'"):
        RunConfig.load(None, ["privacy.dp='central-fixed'", "privacy.epsilon=4"])


def test_privacy_section_round_trips_through_toml(tmp_path):
    cfg = RunConfig.load(
        None,
        [
            "federation.strategy='fedavg'",
            "privacy.dp='central-adaptive'",
            "privacy.epsilon=4.0",
            "privacy.clipping='client'",
        ],
    )
    path = tmp_path / "run.toml"
    path.write_text(cfg.to_toml())
    again = RunConfig.load(path)
    assert again.privacy == cfg.privacy and again.privacy.epsilon == 4.0


# ---- Flower's central DP wrapper, as fedlingua configures it ---------------------------------
D = 20_000  # coordinates: enough to measure the noise's mean and spread precisely


def _reply(value: float, n: int) -> RecordDict:
    return RecordDict(
        {
            ARRAYS_KEY: state_to_record({"w": torch.full((D,), value)}),
            METRICS_KEY: MetricRecord({"num-examples": n}),
        }
    )


@pytest.mark.parametrize("clipping", ["server", "client"])
def test_central_fixed_clips_weighs_clients_equally_and_adds_calibrated_noise(clipping):
    z, c = 0.1, 1.0
    privacy = PrivacyConfig(dp="central-fixed", noise_multiplier=z, clipping=clipping)
    handlers = {1: lambda content: _reply(1.0, 10), 2: lambda content: _reply(-2.0, 30)}
    mods = []
    if clipping == "client":
        from flwr.clientapp.mod import fixedclipping_mod

        mods = [fixedclipping_mod]
    fed = Federation(
        "global",
        make_strategy(
            FederationConfig(strategy="fedavg"),
            2,
            client_lr=0.1,
            equal_weights=True,
            wrap=DPPlan(privacy, z).wrap,
        ),
        InProcessGrid(handlers, mods=mods),
        {"w": torch.zeros(D)},
        lambda rnd: ConfigRecord({"lr": 0.1}),
        seed=0,
        seed_noise=True,
    )
    out = fed.step(1)
    assert out.updated and out.clipping_norm == c
    w = fed.state["w"].double().numpy()
    # both updates clipped to norm C = +-C/sqrt(D) per coordinate; equal weights cancel them
    # (weighting by examples would give -C/(2 sqrt(D)) = -0.0035, ten noise std-errors away)
    assert abs(w.mean()) < 4 * (z * c / 2) / math.sqrt(D)
    # noise N(0, (z C / n)^2) on the mean of n = 2 clients
    assert w.std() == pytest.approx(z * c / 2, rel=0.03)
    # what the server sees: raw updates, or (client-side clipping) only clipped ones
    raw = {"node-1": math.sqrt(D), "node-2": 2 * math.sqrt(D)}
    seen = raw if clipping == "server" else {"node-1": c, "node-2": c}
    assert out.update_norm == pytest.approx(seen, rel=1e-6)


def test_noise_is_seeded_per_round_and_the_same_on_every_run():
    privacy = PrivacyConfig(dp="central-fixed", noise_multiplier=1.0)

    def one_round(seed: int) -> np.ndarray:
        fed = Federation(
            "global",
            make_strategy(
                FederationConfig(strategy="fedavg"),
                1,
                client_lr=0.1,
                equal_weights=True,
                wrap=DPPlan(privacy, 1.0).wrap,
            ),
            InProcessGrid({1: lambda content: _reply(0.5, 5)}),
            {"w": torch.zeros(D)},
            lambda rnd: ConfigRecord({}),
            seed=seed,
            seed_noise=True,
        )
        fed.step(1)
        return fed.state["w"].numpy().copy()

    assert np.array_equal(one_round(0), one_round(0))
    assert not np.array_equal(one_round(0), one_round(1))


# ---- whole runs on the tiny model ------------------------------------------------------------
def _dp_config(tiny_config, tmp_path, name: str, dp: str, **privacy) -> RunConfig:
    cfg = tiny_config(tmp_path, name=name, train__lr=1e-2, federation__rounds=3)
    cfg.privacy.dp = dp
    for key, value in privacy.items():
        setattr(cfg.privacy, key, value)
    return cfg.validate()


@pytest.mark.parametrize("dp", ["central-fixed", "central-adaptive", "local"])
def test_each_mode_trains_and_reports_the_epsilon_it_was_calibrated_to(
    tmp_path, tiny_backbone, tiny_config, dp
):
    cfg = _dp_config(tiny_config, tmp_path, dp, dp, epsilon=6.0, clipping_norm=0.5)
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    priv = results["privacy"]
    assert priv["dp"] == dp and priv["releases"] == 3
    assert 5.99 <= priv["epsilon"] <= 6.0
    assert priv["noise_multiplier"] == pytest.approx(calibrate_noise(6.0, 3, 1e-5))
    assert "epsilon 6 at delta 1e-05" in (tmp_path / dp / "report.md").read_text()
    assert set(results["languages"]) == {"fr", "sw", "lg"}


@pytest.mark.parametrize("dp", ["central-fixed", "central-adaptive"])
def test_clipping_on_the_client_or_the_server_gives_the_same_model(
    tmp_path, tiny_backbone, tiny_config, dp
):
    kw = dict(noise_multiplier=0.8, clipping_norm=0.3, seeded_noise=True)  # the same noise
    server = _dp_config(tiny_config, tmp_path, "server", dp, clipping="server", **kw)
    client = _dp_config(tiny_config, tmp_path, "client", dp, clipping="client", **kw)
    a = run(server, backbone=tiny_backbone, log=lambda s: None)
    b = run(client, backbone=tiny_backbone, log=lambda s: None)
    sa, sb = (
        load_final_states(tmp_path / "server")["global"],
        load_final_states(tmp_path / "client")["global"],
    )
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], rtol=1e-5, atol=1e-6)
    assert a["privacy"]["epsilon"] == b["privacy"]["epsilon"]


@pytest.mark.parametrize("dp", ["central-fixed", "local"])
def test_by_default_no_one_can_recompute_the_noise_from_the_config(
    tmp_path, tiny_backbone, tiny_config, dp
):
    # the attack: whoever holds the run config (the coordinator, any site) reruns the
    # seeded noise and subtracts it. By default the noise comes from OS entropy: two runs
    # of the very same config release different models, so the config does not fix it
    quiet = dict(backbone=tiny_backbone, log=lambda s: None)
    a = run(_dp_config(tiny_config, tmp_path, "a", dp, noise_multiplier=1.0), **quiet)
    run(_dp_config(tiny_config, tmp_path, "b", dp, noise_multiplier=1.0), **quiet)
    sa, sb = (
        load_final_states(tmp_path / "a")["global"],
        load_final_states(tmp_path / "b")["global"],
    )
    assert all(not torch.equal(sa[k], sb[k]) for k in sa)
    assert a["privacy"]["noise_source"] == "OS entropy" and a["privacy"]["epsilon"] > 0
    # seeded noise: reproducible in-process, so recomputable: no epsilon is reported
    seeded = dict(noise_multiplier=1.0, seeded_noise=True)
    c = run(_dp_config(tiny_config, tmp_path, "c", dp, **seeded), **quiet)
    run(_dp_config(tiny_config, tmp_path, "d", dp, **seeded), **quiet)
    sc, sd = (
        load_final_states(tmp_path / "c")["global"],
        load_final_states(tmp_path / "d")["global"],
    )
    assert all(torch.equal(sc[k], sd[k]) for k in sc)
    assert c["privacy"]["epsilon"] is None and "recomputable" in c["privacy"]["noise_source"]
    assert "no epsilon" in (tmp_path / "c" / "report.md").read_text()


def test_a_flower_run_refuses_seeded_noise():
    from fedlingua.flower_app.task import load_run_config

    with pytest.raises(ConfigError, match="seeded_noise"):
        load_run_config(
            {
                "overrides": "privacy.dp='local'; privacy.noise_multiplier=1.0; "
                "privacy.seeded_noise=true; federation.strategy='fedavg'"
            }
        )


def test_rounds_with_missing_replies_are_accounted_as_weaker_releases(
    tmp_path, tiny_backbone, tiny_config
):
    cfg = _dp_config(tiny_config, tmp_path, "drop", "central-fixed", noise_multiplier=2.0)
    cfg.federation.client_dropout = 0.4
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    rounds = [r for r in (tmp_path / "drop" / "metrics.jsonl").read_text().splitlines()]
    assert results["failures"], "this seed should make some client fail"
    expected = []
    for line in rounds:
        fed = json.loads(line)["federations"]["global"]
        if fed["updated"]:
            expected.append(2.0 * len(fed["succeeded"]) / len(fed["sampled"]))
    assert results["privacy"]["epsilon"] == pytest.approx(gaussian_epsilon(expected, 1e-5))
    assert results["privacy"]["epsilon"] > gaussian_epsilon([2.0] * 3, 1e-5)


def test_resume_restores_the_adaptive_clipping_norm(tmp_path, tiny_backbone, tiny_config):
    kw = dict(noise_multiplier=0.5, clipping_norm=0.05, seeded_noise=True)  # reproducible
    full = run(
        _dp_config(tiny_config, tmp_path, "full", "central-adaptive", **kw),
        backbone=tiny_backbone,
        log=lambda s: None,
    )

    def stop_after_round_2(line: str) -> None:
        if line.startswith("round 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(
            _dp_config(tiny_config, tmp_path, "cut", "central-adaptive", **kw),
            backbone=tiny_backbone,
            log=stop_after_round_2,
        )
    resumed = run(None, resume=tmp_path / "cut", backbone=tiny_backbone, log=lambda s: None)
    a, b = load_final_states(tmp_path / "full"), load_final_states(tmp_path / "cut")
    assert all(torch.equal(a["global"][k], b["global"][k]) for k in a["global"])
    assert resumed["privacy"] == full["privacy"]
    norms = [
        json.loads(x)["federations"]["global"]["clipping_norm"]
        for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    ]
    assert norms[0] == 0.05 and norms[2] != norms[1] != norms[0]  # it adapted, and resumed
