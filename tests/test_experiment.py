"""`experiment.build`: setup in one place, and the checks that need the data or the model."""

from __future__ import annotations

import pytest

from fedlingua.config import ConfigError, RunConfig
from fedlingua.experiment import build, check_languages, check_prompt_room


def test_prompt_that_leaves_no_room_for_text_is_rejected():
    cfg = RunConfig.load(None, ["method.num_virtual_tokens=510"])
    with pytest.raises(ConfigError, match="fewer virtual tokens"):
        check_prompt_room(cfg, 512)
    check_prompt_room(
        RunConfig.load(None, ["method.name=lora", "method.num_virtual_tokens=510"]), 512
    )


def test_unknown_language_groups_are_rejected():
    cfg = RunConfig.load(None, ["data.low_resource=xx,sw"])
    with pytest.raises(ConfigError, match="unknown languages \\['xx'\\]"):
        check_languages(cfg, ["fr", "sw"])
    cfg = RunConfig.load(None, ["data.zero_shot_languages=sw"])
    with pytest.raises(ConfigError, match="also have clients"):
        check_languages(cfg, ["fr", "sw"])


def test_build_derives_the_text_budget_from_the_method(tmp_path, tiny_backbone, tiny_config):
    prompt = build(tiny_config(tmp_path), backbone=tiny_backbone)
    lora = build(tiny_config(tmp_path, method__name="lora"), backbone=tiny_backbone)
    room = tiny_backbone.max_positions
    assert prompt.max_length == min(24, room - 4) and lora.max_length == min(24, room)
    assert prompt.bench.method.name == "prompt-encoder" and lora.bench.method.name == "lora"
    assert [c.client_id for c in prompt.clients] == ["fr", "sw", "lg"]
    assert set(prompt.test) == set(prompt.dev) == {"fr", "sw", "lg"}


def test_build_reuses_data_of_another_experiment_but_never_its_workbench(
    tmp_path, tiny_backbone, tiny_config
):
    first = build(tiny_config(tmp_path), backbone=tiny_backbone)
    second = build(tiny_config(tmp_path, paradigm="monolingual"), reuse=first)
    assert second.backbone is first.backbone and second.dataset is first.dataset
    assert second.train is first.train  # same data config, same text budget
    assert second.bench is not first.bench
    assert list(second.topology.federations) == ["fr", "sw", "lg"]
    assert [second.model_for(x) for x in ("fr", "lg")] == ["fr", "lg"]
    assert first.model_for("fr") == "global"
    other = build(tiny_config(tmp_path, seed=1), reuse=first)
    assert other.train is not first.train  # another seed makes other clients
