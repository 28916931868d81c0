"""The Flower App: its pieces in-process, and a whole `flwr run` in Flower's Ray simulation.

The end-to-end test drives the real CLI path a user takes (`flwr run . --stream`
against the default `:local:` connection, which starts a detached local SuperLink)
offline, in a private FLWR_HOME on private ports, on a tiny model saved to disk:
2 SuperNodes, 2 rounds. Every process the run starts (SuperLink, SuperExec,
flwr-simulation, Ray) carries a marker in its environment; teardown stops exactly
those processes, by pid.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from flower_processes import (
    BIN,
    REPO,
    flwr_run_simulation,
    local_flower_env,
    needs_flwr_cli,
    same_model_as_in_process,
)
from flwr.app import Context, MessageType, RecordDict

from fedlingua.config import ConfigError, RunConfig
from fedlingua.federation.client import train_config
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import CLIENT_KEY
from fedlingua.flower_app import client_app
from fedlingua.flower_app.task import load_run_config

RUN_TIMEOUT_S = 300  # about 45 s on 2 cores


# ---- the pieces, in-process -----------------------------------------------------------------
def test_run_config_keys_give_the_fedlingua_config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("seed = 3\n[federation]\nrounds = 7\n")
    cfg = load_run_config(
        {
            "fedlingua-config": str(path),
            "overrides": "federation.rounds=2; data.languages=['fr','sw']\nmethod.name='lora'",
        }
    )
    assert (cfg.seed, cfg.federation.rounds, cfg.method.name) == (3, 2, "lora")
    assert cfg.data.languages == ["fr", "sw"]
    assert load_run_config({"fedlingua-config": "", "overrides": ""}) == RunConfig().validate()


def test_run_config_refuses_other_paradigms_and_missing_files(tmp_path):
    (tmp_path / "central.toml").write_text("paradigm = 'centralized'\n")
    with pytest.raises(ConfigError, match="federated paradigm only"):
        load_run_config({"fedlingua-config": str(tmp_path / "central.toml")})
    with pytest.raises(ConfigError, match="cannot be set by a Flower run"):
        load_run_config({"overrides": "paradigm='centralized'"})
    with pytest.raises(ConfigError, match="absolute path"):
        load_run_config({"fedlingua-config": "no/such/run.toml"})


def _client_context(config_path: Path, partition: int, partitions: int) -> Context:
    node = {"partition-id": partition, "num-partitions": partitions}
    run_config = {"fedlingua-config": str(config_path), "overrides": ""}
    return Context(
        run_id=0, node_id=partition + 1, node_config=node, state=RecordDict(), run_config=run_config
    )


def test_client_app_plays_the_partition_it_is_given_and_replies_errors_like_the_grid(
    tmp_path, tiny_model_dir, tiny_config
):
    cfg = tiny_config(tmp_path, federation__client_dropout=0.99)
    cfg.model.name = str(tiny_model_dir)
    cfg.data.languages = ["fr", "sw"]
    path = tmp_path / "run.toml"
    path.write_text(cfg.to_toml())
    grid = InProcessGrid({})  # makes Flower messages outside a SuperLink
    ask = grid.create_message(RecordDict(), MessageType.QUERY, 1, "")
    names = []
    for partition in (0, 1):
        reply = client_app.app(ask, _client_context(path, partition, 2))
        assert not reply.has_error(), reply.error
        names.append(reply.content[CLIENT_KEY]["client-id"])
    assert names == ["fr", "sw"]

    reply = client_app.app(ask, _client_context(path, 0, 3))
    # a site's error reply names the error class only: its message stays in the site's log
    assert reply.has_error() and reply.error.reason == "ConfigError: details in the site's log"

    content = RecordDict({"config": train_config(cfg, 0.01)})
    content["config"]["server-round"] = 1
    train = grid.create_message(content, MessageType.TRAIN, 1, "1")
    reply = client_app.app(train, _client_context(path, 0, 2))
    assert reply.error.reason == "ClientDropout: client fr dropped out in round 1"


# ---- the whole App under `flwr run` ---------------------------------------------------------
@pytest.fixture(name="flower_env")
def flower_env_fixture(tmp_path):
    """Environment for `flwr`: private FLWR_HOME and ports, offline, tagged; stops it all after."""
    with local_flower_env(tmp_path) as env:
        yield env


def _flwr(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "flwr"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@needs_flwr_cli
def test_flwr_run_simulation_trains_two_clients_for_two_rounds(
    tmp_path, flower_env, tiny_model_dir, tiny_config
):
    cfg: RunConfig = tiny_config(tmp_path / "runs", name="flower")
    cfg.model.name = str(tiny_model_dir)
    cfg.data.languages = ["fr", "sw"]
    cfg.data.max_train_per_client = 64
    config_path = tmp_path / "run.toml"
    config_path.write_text(cfg.to_toml())

    start = time.perf_counter()
    proc = flwr_run_simulation(flower_env, config_path, 2, RUN_TIMEOUT_S)
    wall = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    run_id = re.search(r"Successfully started run (\d+)", log)
    assert run_id, log
    status = _flwr(flower_env, "ls", "--run-id", run_id.group(1), "--format", "json")
    runs = json.loads(status.stdout)["runs"]
    assert runs[0]["status"] == "finished:completed", (runs, log)

    rundir = tmp_path / "runs" / "flower"
    rounds = [json.loads(x) for x in (rundir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2], log
    for r in rounds:
        fed = r["federations"]["global"]
        clients = sorted(fed["sampled"])
        assert len(clients) == 2 and sorted(fed["succeeded"]) == clients, fed
        assert not fed["failed"], fed
        assert sorted(fed["bytes_up"]) == clients and min(fed["bytes_up"].values()) > 0
        assert sorted(fed["bytes_down"]) == clients and min(fed["bytes_down"].values()) > 0
        assert fed["updated"] and set(r["test"]) == {"fr", "sw"}
    results = json.loads((rundir / "results.json").read_text())
    assert set(results["languages"]) == {"fr", "sw"}
    for scores in results["languages"].values():
        assert 0.0 <= scores["accuracy"] <= 1.0
    assert results["communication"]["bytes_up"] > 0 and results["communication"]["bytes_down"] > 0
    print(f"flwr run: {wall:.1f} s wall for 2 rounds x 2 clients")

    # the same config in-process: the Flower path is the same engine, so the same global model
    same_model_as_in_process(cfg, rundir, "in-process")
