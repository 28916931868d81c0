"""A federation on loopback for each test: `scripts/federation.sh` in a temporary folder.

Each test gets its own run folder, ports, FLWR_HOMEs and a marker in the environment
of every process the script starts; teardown runs `federation.sh down`, then stops
anything still carrying the marker and fails if something had survived.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from federation_helpers import Deployment
from flower_processes import flower_env, stop_tagged, tagged_pids

from fedlingua.config import RunConfig


@pytest.fixture
def deployment(tmp_path):
    tag = uuid.uuid4().hex
    home = tmp_path / "flwr-home"
    home.mkdir()
    dep = Deployment(tmp_path, flower_env(home, tag))
    try:
        yield dep
    finally:
        dep.sh("down", check=False, timeout=120)
        survivors = tagged_pids(tag)
        stop_tagged(tag)
        assert not tagged_pids(tag), "processes of the federation could not be stopped"
        assert not survivors, f"`federation.sh down` left processes running: {survivors}"


@pytest.fixture
def run_config(tmp_path, tiny_config):
    """Write a tiny-model run config (one client per language) and return (path, RunConfig)."""

    def make(name: str, languages=("fr", "sw", "lg"), **overrides) -> tuple[Path, RunConfig]:
        cfg = tiny_config(tmp_path / "runs", name=name, **overrides)
        cfg.model.name = "tiny"  # every process builds the same seeded tiny backbone
        cfg.model.precision = "fp32"
        cfg.data.languages = list(languages)
        cfg.validate()
        path = tmp_path / f"{name}.toml"
        path.write_text(cfg.to_toml())
        return path, cfg

    return make
