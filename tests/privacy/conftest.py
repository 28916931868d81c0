"""`flwr run` for the privacy tests: the Flower App in simulation, behind a local SuperLink on
loopback, in a private FLWR_HOME, every process it starts stopped afterwards (by its marker;
see tests/flower_processes.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from flower_processes import flwr_run_simulation, local_flower_env

RUN_TIMEOUT_S = 300  # a 2-round run on the tiny model takes about 45-60 s on 2 busy cores


@pytest.fixture
def flwr_env(tmp_path):
    with local_flower_env(tmp_path) as env:
        yield env


@pytest.fixture
def flwr_run():
    """`flwr_run(env, config_path, supernodes)`: `flwr run . --stream` of the repository's
    Flower App with a fedlingua config file (use with the `flwr_env` fixture)."""
    return _flwr_run


def _flwr_run(env: dict, config_path: Path, supernodes: int) -> subprocess.CompletedProcess:
    return flwr_run_simulation(env, config_path, supernodes, RUN_TIMEOUT_S)


@pytest.fixture
def declared_and_texts():
    """`f(cfg, backbone) -> (Declared, text needles)`: what the config's clients may send,
    derived independently of the run's own code path, and every text of the dataset."""
    from fedlingua.experiment import build
    from fedlingua.privacy.payload import Declared, text_needles

    def make(cfg, backbone):
        exp = build(cfg, backbone=backbone)
        bench = exp.bench
        arrays = {n: tuple(p.shape) for n, p in bench.model.named_parameters() if p.requires_grad}
        identities = {c.client_id: c.lang for c in exp.clients}
        ds = exp.dataset
        texts = [
            ex.text
            for lang in ds.languages()
            for split in ("train", "dev", "test")
            for ex in ds.split(lang, split)
        ]
        return Declared(arrays, identities), text_needles(texts)

    return make
