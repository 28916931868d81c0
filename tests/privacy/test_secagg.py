"""Secure aggregation (Flower SecAgg+): the server learns the sum, never a client's tensors.

In-process rounds with fixed client tensors check the aggregate against the exact
example-weighted mean, inspect every message the server received (no client tensor in
clear: only masked integers), and survive a client that drops out after the key exchange.
A `flwr run` on loopback (a local SuperLink on 127.0.0.1, Flower's simulation runtime)
trains with SecAgg+ for two rounds, one with a dropout, and its payload log shows that
no client message carried a tensor in clear.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from flower_processes import needs_flwr_cli
from flwr.app import ConfigRecord, RecordDict
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from flwr.compat.common import recorddict_compat as compat

from fedlingua.config import PrivacyConfig
from fedlingua.engine import load_final_states, run
from fedlingua.federation.client import drops_out
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.secagg import SecAggFederation, secagg_client_mods
from fedlingua.privacy.payload import ENV, Declared, audit_log, audit_secagg_reply

SHAPES = {"w": (40, 25), "b": (25,)}


def _client_tensors(k: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + k)
    return {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in SHAPES.items()}


def _handler(k: int, examples: int, fail: bool = False):
    def handle(content: RecordDict) -> RecordDict:
        if fail:
            raise RuntimeError(f"client {k} lost its connection")
        assert "fitins.parameters" in content.array_records  # the global model, in clear
        t = _client_tensors(k)
        fitres = FitRes(
            Status(Code.OK, "ok"),
            ndarrays_to_parameters([t["w"], t["b"]]),
            examples,
            {"num-examples": examples, "train-loss": 0.1 * k},
        )
        return compat.fitres_to_recorddict(fitres, keep_input=True)

    return handle


def _federation(fail: set[int] = frozenset(), n: int = 4) -> SecAggFederation:
    examples = {k: 10 * (k + 1) for k in range(1, n + 1)}
    handlers = {k: _handler(k, examples[k], k in fail) for k in examples}
    grid = InProcessGrid(handlers, mods=secagg_client_mods())
    return SecAggFederation(
        "global",
        grid,
        {n: torch.zeros(s) for n, s in SHAPES.items()},
        lambda rnd: ConfigRecord({"lr": 0.1}),
        seed=0,
        privacy=PrivacyConfig(secure_aggregation=True),
        node_names={k: f"c{k}" for k in examples},
        keep_messages=True,
    )


def _weighted_mean(clients: list[int]) -> dict[str, np.ndarray]:
    weights = np.array([10 * (k + 1) for k in clients], dtype=np.float64)
    return {
        n: sum(w * _client_tensors(k)[n] for k, w in zip(clients, weights, strict=True))
        / weights.sum()
        for n in SHAPES
    }


def test_the_server_gets_the_weighted_mean_and_never_a_client_tensor_in_clear():
    fed = _federation()
    out = fed.step(1)
    assert out.updated and out.succeeded == ["c1", "c2", "c3", "c4"] and not out.failed
    expected = _weighted_mean([1, 2, 3, 4])
    for name in SHAPES:  # 2^22 quantization levels over [-8, 8], weights up to 1000
        np.testing.assert_allclose(fed.state[name].numpy(), expected[name], atol=2e-3)
    assert out.num_examples == 140 and out.train_loss == pytest.approx(40 / 140)

    received = fed.last_grid.received
    assert sorted({x.stage for x in received}) == [0, 1, 2, 3] and all(
        not x.error for x in received
    )
    clear = [np.concatenate([v.ravel() for v in _client_tensors(k).values()]) for k in (1, 2, 3, 4)]
    masked_vectors = 0
    for x in received:
        # no tensors at all: Flower empties the ArrayRecords; only config/metric records remain
        assert all(len(rec) == 0 for rec in x.content.array_records.values()), x.stage
        configs = x.content.config_records[RECORD_KEY_CONFIGS]
        if Key.MASKED_PARAMETERS in configs:
            masked_vectors += 1
            from flwr.common import bytes_to_ndarray

            masked = np.concatenate(
                [bytes_to_ndarray(b).ravel() for b in configs[Key.MASKED_PARAMETERS]]
            ).astype(np.float64)
            body = masked[1:]  # [weight factor, parameters...]: masked as a whole
            assert body.min() >= 0 and body.max() < 2**32 and body.std() > 2**30  # ~uniform
            for vector in clear:  # and uncorrelated with every client's tensors
                assert abs(np.corrcoef(body, vector)[0, 1]) < 0.15
    assert masked_vectors == 4


def test_a_client_that_drops_out_after_the_key_exchange_is_survived():
    fed = _federation(fail={3})
    out = fed.step(1)
    assert out.updated and out.succeeded == ["c1", "c2", "c4"]
    # recorded as that client's failure; its message stays in its own log
    assert out.failed["c3"] == "ClientFailure: RuntimeError: details in the site's log"
    expected = _weighted_mean([1, 2, 4])  # the dropped client's masks were reconstructed
    for name in SHAPES:
        np.testing.assert_allclose(fed.state[name].numpy(), expected[name], atol=2e-3)
    stages = {x.stage: [] for x in fed.last_grid.received}
    for x in fed.last_grid.received:
        stages[x.stage].append(x.node if not x.error else -x.node)
    assert sorted(stages[1]) == [1, 2, 3, 4]  # c3 shared its keys, then failed in stage 2
    assert -3 in stages[2] and 3 not in stages[3]


def test_the_payload_audit_holds_secagg_replies_to_their_protocol():
    fed = _federation()
    fed.step(1)
    declared = Declared({"w": SHAPES["w"], "b": SHAPES["b"]}, {})
    replies = [x.content for x in fed.last_grid.received]
    assert all(audit_secagg_reply(r, declared, [b"a training sentence"]) == [] for r in replies)
    masked = next(r for r in replies if "fitres.parameters" in r.array_records)
    leaky = RecordDict(dict(masked))
    leaky["fitres.parameters"] = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters([_client_tensors(1)["w"]]), keep_input=True
    )
    assert any("in clear" in x for x in audit_secagg_reply(leaky, declared))
    chatty = RecordDict(dict(masked))
    chatty["notes"] = ConfigRecord({"text": "a training sentence"})
    problems = audit_secagg_reply(chatty, declared, [b"a training sentence"])
    assert any("outside the SecAgg+ protocol" in x for x in problems)
    assert any("training text" in x for x in problems)


def test_too_many_dropouts_halt_the_round_and_keep_the_global_model():
    fed = _federation(fail={2, 3}, n=3)  # 1 survivor < threshold 2
    out = fed.step(1)
    assert not out.updated and not out.succeeded
    assert all(float(t.abs().max()) == 0 for t in fed.state.values())


# ---- whole runs ------------------------------------------------------------------------------
def test_an_in_process_secure_run_matches_plain_fedavg_up_to_quantization(
    tmp_path, tiny_backbone, tiny_config
):
    plain = tiny_config(tmp_path, name="plain", federation__rounds=1, train__lr=1e-2)
    secure = tiny_config(tmp_path, name="secure", federation__rounds=1, train__lr=1e-2)
    secure.privacy.secure_aggregation = True
    a = run(plain, backbone=tiny_backbone, log=lambda s: None)
    b = run(secure, backbone=tiny_backbone, log=lambda s: None)
    sa, sb = (
        load_final_states(tmp_path / "plain")["global"],
        load_final_states(tmp_path / "secure")["global"],
    )
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], rtol=0, atol=2e-3)
    assert b["communication"]["bytes_up"] > a["communication"]["bytes_up"]  # masking costs
    round1 = json.loads((tmp_path / "secure" / "metrics.jsonl").read_text().splitlines()[0])
    fed = round1["federations"]["global"]
    assert sorted(fed["succeeded"]) == ["fr", "lg", "sw"] and fed["update_norm"] == {}


def _seed_with_one_dropout(clients: list[str], p: float) -> int:
    """A run seed under which exactly one client drops out in round 1 and none in round 2."""
    for seed in range(200):
        r1 = [c for c in clients if drops_out(seed, 1, c, p)]
        r2 = [c for c in clients if drops_out(seed, 2, c, p)]
        if len(r1) == 1 and not r2:
            return seed
    raise AssertionError("no such seed")


@needs_flwr_cli
def test_flwr_run_trains_with_secagg_on_loopback_and_survives_a_dropout(
    tmp_path, flwr_env, flwr_run, tiny_model_dir, tiny_config, declared_and_texts
):
    clients = ["fr", "sw", "lg"]
    cfg = tiny_config(tmp_path / "runs", name="secagg", federation__rounds=2)
    cfg.model.name = str(tiny_model_dir)
    cfg.data.languages = clients
    cfg.data.max_train_per_client = 32
    cfg.federation.client_dropout = 0.3
    cfg.seed = _seed_with_one_dropout(clients, 0.3)
    cfg.privacy.secure_aggregation = True
    config_path = tmp_path / "run.toml"
    config_path.write_text(cfg.validate().to_toml())
    log = tmp_path / "payloads"
    proc = flwr_run(flwr_env | {ENV: str(log)}, config_path, supernodes=3)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    rounds = [
        json.loads(x)["federations"]["global"]
        for x in (tmp_path / "runs" / "secagg" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rounds) == 2 and all(r["updated"] for r in rounds), output
    assert len(rounds[0]["failed"]) == 1 and len(rounds[0]["succeeded"]) == 2
    assert "dropped out in round 1" in next(iter(rounds[0]["failed"].values()))
    assert sorted(rounds[1]["succeeded"]) == sorted(clients)
    # every message a ClientApp sent follows the SecAgg+ contract: no tensor in clear
    from fedlingua.models import load_backbone

    declared, texts = declared_and_texts(cfg, load_backbone(str(tiny_model_dir)))
    audit = audit_log(log, declared, texts)
    assert audit.problems == {}
    assert audit.secagg >= 4 * 2 * 3 - 3  # 4 stages x 2 rounds x 3 clients, less the dropout
    assert audit.by_kind["query"] == 3 and audit.errors == 1
    results = json.loads((tmp_path / "runs" / "secagg" / "results.json").read_text())
    assert set(results["languages"]) == set(clients)
