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


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.partition=random", "data.partition='random': use 'iid' or 'dirichlet'"),
        ("method.name=adapter", "use 'prompt-encoder', 'soft-prompt', 'lora' or 'full'"),
        ("federation.rounds=two", "federation.rounds must be an integer, got 'two'"),
        ("federation.rounds=2.0", "federation.rounds must be an integer, got 2.0"),
        ("federation.rounds=true", "federation.rounds must be an integer, got True"),
        ("train.lr=true", "train.lr must be a number, got True"),
        ("progress=yes", "progress must be true or false, got 'yes'"),
        ("name=3", "name must be a string, got 3"),
        ("data.languages=[1]", "data.languages\\[0\\] must be a string, got 1"),
        ("federation=1", "federation must be a table, got 1"),
        ("data.nonsense=1", "known under data: \\['alpha', 'clients_per_language'"),
    ],
)
def test_type_and_choice_errors_name_the_key_and_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(None, [override])


def test_override_values_are_toml_or_plain_strings():
    cfg = RunConfig.load(
        None,
        [
            "data.languages=['fr','sw']",
            "data.low-resource=sw",
            "train.lr=1e-3",
            "federation.round_timeout=30",
            "progress=True",
            "data.columns={text='t', label=2}",
        ],
    )
    assert cfg.data.languages == ["fr", "sw"] and cfg.data.low_resource == ["sw"]
    assert cfg.train.lr == 1e-3 and cfg.federation.round_timeout == 30.0
    assert isinstance(cfg.federation.round_timeout, float) and cfg.progress is True
    assert cfg.data.columns == {"text": "t", "label": "2"}


def test_validate_checks_a_config_edited_in_code():
    cfg = RunConfig()
    cfg.paradigm = "swarm"
    with pytest.raises(ConfigError, match="paradigm='swarm': use 'federated'"):
        cfg.validate()
