"""Server rounds: Flower strategies aggregate exactly, faults and bad payloads are survived."""

from __future__ import annotations

import pytest
import torch
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedlingua.config import FederationConfig
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import ARRAYS_KEY, METRICS_KEY, state_to_record
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy

INIT = {"w": torch.zeros(2, 3), "b": torch.zeros(3)}


def _reply(value: float, n: int, shape=(2, 3)) -> RecordDict:
    state = {"w": torch.full(shape, value), "b": torch.full((3,), 2 * value)}
    return RecordDict(
        {ARRAYS_KEY: state_to_record(state), METRICS_KEY: MetricRecord({"num-examples": n})}
    )


def _federation(handlers, strategy="fedavg", **fed_kw) -> Federation:
    cfg = FederationConfig(strategy=strategy, **fed_kw)
    return Federation(
        "global",
        make_strategy(cfg, len(handlers), client_lr=1e-2),
        InProcessGrid(handlers),
        {k: v.clone() for k, v in INIT.items()},
        lambda rnd: ConfigRecord({"lr": 0.1}),
        seed=0,
        node_names={i: f"c{i}" for i in handlers},
    )


def test_fedavg_equals_hand_computed_example_weighted_average():
    fed = _federation({1: lambda c: _reply(1.0, 10), 2: lambda c: _reply(4.0, 30)})
    out = fed.step(1)
    expected = (1.0 * 10 + 4.0 * 30) / 40
    assert torch.allclose(fed.state["w"], torch.full((2, 3), expected))
    assert torch.allclose(fed.state["b"], torch.full((3,), 2 * expected))
    assert out.num_examples == 40 and out.updated and sorted(out.succeeded) == ["c1", "c2"]
    # payloads are measured from serialized bytes: at least the raw float32 data
    assert all(v > (6 + 3) * 4 for v in out.bytes_up.values())
    assert all(v > (6 + 3) * 4 for v in out.bytes_down.values())


def test_failed_and_malformed_clients_are_left_out_of_the_average():
    def crash(content):
        raise RuntimeError("disk on fire")

    fed = _federation(
        {
            1: lambda c: _reply(1.0, 10),
            2: crash,
            3: lambda c: _reply(100.0, 10, shape=(3, 2)),  # wrong shape
            4: lambda c: _reply(float("nan"), 10),  # not finite
        }
    )
    out = fed.step(1)
    assert out.succeeded == ["c1"]
    # the site's error reply names the error class; its message stays in the site's log
    assert out.failed["c2"] == "RuntimeError: details in the site's log"
    assert "shape" in out.failed["c3"] and "NaN" in out.failed["c4"]
    assert torch.allclose(fed.state["w"], torch.ones(2, 3))


def test_round_without_replies_keeps_the_previous_state():
    def crash(content):
        raise RuntimeError("offline")

    fed = _federation({1: crash, 2: crash})
    out = fed.step(1)
    assert not out.updated and len(out.failed) == 2
    assert torch.equal(fed.state["w"], INIT["w"])


def test_fraction_samples_the_same_clients_for_the_same_seed_and_round():
    handlers = {i: (lambda c, i=i: _reply(float(i), 1)) for i in range(1, 9)}
    picks = [_federation(handlers, fraction=0.25).step(3).sampled for _ in range(2)]
    assert picks[0] == picks[1] and len(picks[0]) == 2
    other = _federation(handlers, fraction=0.25).step(4).sampled
    assert len(other) == 2


@pytest.mark.parametrize(
    "strategy", ["fedadam", "fedyogi", "fedmedian", "fedprox", "fedtrimmedavg"]
)
def test_other_flower_strategies_aggregate(strategy):
    handlers = {i: (lambda c, i=i: _reply(float(i), 5)) for i in range(1, 6)}
    fed = _federation(handlers, strategy=strategy)
    fed.step(1)
    assert not torch.equal(fed.state["w"], INIT["w"])
    if strategy == "fedmedian":
        assert torch.allclose(fed.state["w"], torch.full((2, 3), 3.0))


def test_a_reply_whose_extra_tensor_record_is_malformed_is_rejected():
    """Every tensor record of a reply (e.g. SCAFFOLD's control change) is checked, not only
    the global tensors."""

    def with_bad_extra(content):
        reply = _reply(1.0, 10)
        reply["scaffold-control-delta"] = state_to_record({"w": torch.full((3, 2), float("nan"))})
        return reply

    fed = _federation({1: lambda c: _reply(1.0, 10), 2: with_bad_extra})
    out = fed.step(1)
    assert out.succeeded == ["c1"] and "rejected reply" in out.failed["c2"]


@pytest.mark.parametrize("strategy", ["fedadam", "fedyogi", "fedavgm"])
def test_downloads_travel_in_the_trainable_dtype_under_server_optimizers(
    tmp_path, tiny_config, tiny_backbone, strategy
):
    import json

    from fedlingua.engine import load_final_states, run

    cfg = tiny_config(tmp_path, name=strategy, federation__strategy=strategy)
    cfg.federation.rounds = 3
    run(cfg, backbone=tiny_backbone, log=lambda line: None)
    for line in (tmp_path / strategy / "metrics.jsonl").read_text().splitlines():
        fed = json.loads(line)["federations"]["global"]
        for client, up in fed["bytes_up"].items():  # float64 tensors would make it ~2x
            assert fed["bytes_down"][client] < 1.05 * up, (client, fed)  # config vs metrics
    final = load_final_states(tmp_path / strategy)["global"]
    assert {t.dtype for t in final.values()} == {torch.float32}
