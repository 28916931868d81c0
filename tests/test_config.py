"""Run configs: TOML + dotted overrides, and validation that fails before any work."""

from __future__ import annotations

import pytest

from fedlingua.config import ConfigError, RunConfig


def test_toml_round_trip_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('paradigm = "monolingual"\n[federation]\nrounds = 3\n')
    cfg = RunConfig.load(path, ["method.name=lora", "data.languages=fr,sw", "train.lr=0.01"])
    assert (cfg.paradigm, cfg.federation.rounds, cfg.method.name) == ("monolingual", 3, "lora")
    assert cfg.data.languages == ["fr", "sw"] and cfg.train.lr == 0.01
    again = tmp_path / "again.toml"
    again.write_text(cfg.to_toml())
    assert RunConfig.load(again) == cfg


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("method.name=adapter", "method.name"),
        ("paradigm=swarm", "paradigm"),
        ("federation.rounds=0", "rounds"),
        ("federation.fraction=1.5", "fraction"),
        ("federation.fraction=0", "fraction"),
        ("federation.strategy=fedfoo", "strategy"),
        ("federation.client_dropout=1.0", "client_dropout"),
        ("federation.rounds=two", "integer"),
        ("nonsense.key=1", "unknown config key"),
        ("data.partition=random", "partition"),
    ],
)
def test_invalid_config_fails_with_advice(override, needle):
    with pytest.raises(ConfigError, match=needle):
        RunConfig.load(None, [override])


def test_prompt_that_leaves_no_room_for_text_is_rejected():
    cfg = RunConfig.load(None, ["method.num_virtual_tokens=510"])
    with pytest.raises(ConfigError, match="fewer virtual tokens"):
        cfg.check_prompt_room(512)
    RunConfig.load(None, ["method.name=lora", "method.num_virtual_tokens=510"]).check_prompt_room(
        512
    )


def test_unknown_language_groups_are_rejected():
    cfg = RunConfig.load(None, ["data.low_resource=xx,sw"])
    with pytest.raises(ConfigError, match="unknown languages \\['xx'\\]"):
        cfg.check_languages(["fr", "sw"])
    cfg = RunConfig.load(None, ["data.zero_shot_languages=sw"])
    with pytest.raises(ConfigError, match="also have clients"):
        cfg.check_languages(["fr", "sw"])


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.load(tmp_path / "nope.toml")
