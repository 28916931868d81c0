"""SecAgg+ in deployment mode: `scripts/federation.sh` (TLS SuperLink + authenticated
SuperNodes on loopback, one long-running ClientApp worker each), a client dropping out
after the key exchange, and proof from every logged client message that no tensor left a
client in clear. Uses the deployment tests' helpers (tests/deployment/)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from flower_processes import flower_env, stop_tagged, tagged_pids

from fedlingua.federation.client import drops_out
from fedlingua.privacy.payload import ENV, audit_log

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deployment"))
from federation_helpers import Deployment, needs_deployment  # noqa: E402

pytestmark = needs_deployment
CLIENTS = ["fr", "sw", "lg"]


@pytest.fixture
def deployment(tmp_path):
    tag = uuid.uuid4().hex
    home = tmp_path / "flwr-home"
    home.mkdir()
    env = flower_env(home, tag) | {ENV: str(tmp_path / "payloads")}
    dep = Deployment(tmp_path, env)
    try:
        yield dep
    finally:
        dep.sh("down", check=False, timeout=120)
        stop_tagged(tag)
        assert not tagged_pids(tag), "processes of the federation could not be stopped"


def _seed_with_one_dropout(p: float) -> int:
    for seed in range(200):
        r1 = [c for c in CLIENTS if drops_out(seed, 1, c, p)]
        if len(r1) == 1 and not [c for c in CLIENTS if drops_out(seed, 2, c, p)]:
            return seed
    raise AssertionError("no such seed")


def test_secagg_over_tls_supernodes_survives_a_dropout_and_no_tensor_leaves_in_clear(
    tmp_path, deployment, tiny_config, declared_and_texts
):
    cfg = tiny_config(tmp_path / "runs", name="secagg", federation__rounds=2)
    cfg.model.name = "tiny"
    cfg.model.precision = "fp32"
    cfg.data.languages = CLIENTS
    cfg.federation.client_dropout = 0.3
    cfg.seed = _seed_with_one_dropout(0.3)
    cfg.privacy.secure_aggregation = True
    path = tmp_path / "secagg.toml"
    path.write_text(cfg.validate().to_toml())

    deployment.up(3, path)
    proc = deployment.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr + deployment.logs()
    rounds = [
        json.loads(x)["federations"]["global"]
        for x in (tmp_path / "runs" / "secagg" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rounds) == 2 and all(r["updated"] for r in rounds), rounds
    assert len(rounds[0]["failed"]) == 1 and len(rounds[0]["succeeded"]) == 2, rounds[0]
    assert "dropped out in round 1" in next(iter(rounds[0]["failed"].values()))
    assert sorted(rounds[1]["succeeded"]) == sorted(CLIENTS)

    from fedlingua.models import load_backbone

    declared, texts = declared_and_texts(cfg, load_backbone("tiny"))
    audit = audit_log(tmp_path / "payloads", declared, texts)
    assert audit.problems == {}  # no tensor left a client in clear: SecAgg+ records only
    assert audit.secagg >= 4 * 2 * 3 - 3  # 4 stages x 2 rounds x 3 clients, less the dropout
