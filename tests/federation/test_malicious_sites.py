"""A malicious site is a failed client: never a crash, never the whole model.

Each attack is one site's reply, built by a real client update and then altered: metrics
that are NaN, inf, lists or absurd counts; a reply that claims another site's id; an
update larger than the clipping norm the configuration promises. The run completes, the
attacker is recorded as failed, and the honest sites' aggregate is what it would be
without it.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from flwr.app import ConfigRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from fedlingua.engine import load_final_states, run
from fedlingua.federation.client import handle_train
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CLIENT_KEY,
    METRICS_KEY,
    TRAIN_METRICS,
    PayloadError,
    check_train_metrics,
    record_to_state,
    state_to_record,
)

QUIET = dict(log=lambda line: None)


def _attacker(kind: str, victim: str = "sw"):
    """A client update whose reply `victim` alters as `kind` says."""

    def handler(bench, site, content, on_step=None, context=None):
        reply = handle_train(bench, site, content, on_step=on_step, context=context)
        if site.client_id != victim:
            return reply
        metrics = reply[METRICS_KEY]
        if kind == "nan examples":
            metrics["num-examples"] = float("nan")
        elif kind == "inf examples":
            metrics["num-examples"] = float("inf")
        elif kind == "huge examples":
            metrics["num-examples"] = 10**15
        elif kind == "list compute":
            metrics["compute-s"] = [1.0, 2.0]
        elif kind == "nan loss":
            metrics["train-loss"] = float("nan")
        elif kind == "spoofed id":
            reply[CLIENT_KEY] = ConfigRecord({"client-id": "fr", "lang": "fr"})
        elif kind == "big update":
            state = record_to_state(reply[ARRAYS_KEY])
            reply[ARRAYS_KEY] = state_to_record({k: v * 1000 for k, v in state.items()})
        return reply

    return handler


def _rounds(run_dir) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "kind",
    ["nan examples", "inf examples", "huge examples", "list compute", "nan loss", "spoofed id"],
)
def test_a_malformed_or_lying_reply_fails_its_site_and_the_run_goes_on(
    tmp_path, tiny_config, tiny_backbone, kind
):
    cfg = tiny_config(tmp_path, name="attacked", federation__strategy="fedadam")
    results = run(cfg, backbone=tiny_backbone, client_handler=_attacker(kind), **QUIET)
    for record in _rounds(tmp_path / "attacked"):
        fed = record["federations"]["global"]
        assert fed["failed"].keys() == {"sw"} and fed["failed"]["sw"].startswith("rejected")
        assert sorted(fed["succeeded"]) == ["fr", "lg"] and fed["updated"]
        assert fed["num_examples"] == 96  # 48 + 48: no one weighs more than it declared
    # the aggregate is the honest sites' (the same as a run where sw simply fails)
    cfg2 = tiny_config(tmp_path, name="honest-failure", federation__strategy="fedadam")
    run(cfg2, backbone=tiny_backbone, client_handler=_attacker("nan examples"), **QUIET)
    a = load_final_states(tmp_path / "attacked")["global"]
    b = load_final_states(tmp_path / "honest-failure")["global"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert set(results["languages"]) == {"fr", "sw", "lg"}


def test_a_spoofed_reply_is_named_for_its_node_not_for_its_claim(
    tmp_path, tiny_config, tiny_backbone
):
    cfg = tiny_config(tmp_path, name="spoof", federation__rounds=1)
    run(cfg, backbone=tiny_backbone, client_handler=_attacker("spoofed id"), **QUIET)
    (record,) = _rounds(tmp_path / "spoof")
    failed = record["federations"]["global"]["failed"]
    assert "claims client 'fr'" in failed["sw"]
    assert "fr" in record["federations"]["global"]["succeeded"]  # the real fr is untouched


def test_promised_client_clipping_is_checked_by_the_server(
    tmp_path, tiny_config, tiny_backbone, monkeypatch
):
    from fedlingua.engine import federations

    # a site that skips the clipping it promised: no client mod runs at all here, and the
    # honest sites' updates stay far below the norm anyway
    monkeypatch.setattr(federations, "client_mods", lambda cfg: [])
    cfg = tiny_config(tmp_path, name="clip", federation__rounds=1, train__lr=1e-2)
    cfg.privacy.dp, cfg.privacy.clipping = "central-fixed", "client"
    cfg.privacy.noise_multiplier, cfg.privacy.clipping_norm = 0.5, 10.0
    cfg.validate()
    run(cfg, backbone=tiny_backbone, client_handler=_attacker("big update"), **QUIET)
    (record,) = _rounds(tmp_path / "clip")
    fed = record["federations"]["global"]
    assert "above the clipping norm" in fed["failed"]["sw"]
    assert sorted(fed["succeeded"]) == ["fr", "lg"]


@pytest.mark.parametrize(
    ("metrics", "cap", "ok"),
    [
        ({"num-examples": 48, "train-loss": 0.7, "steps": 3, "compute-s": 0.1}, 48, True),
        ({"num-examples": 49}, 48, False),
        ({"num-examples": 0}, None, False),
        ({"num-examples": 4.5}, None, False),
        ({"num-examples": True}, None, False),
        ({"num-examples": 4, "steps": -1}, None, False),
        ({"num-examples": 4, "extra": 1.0}, None, False),
        ({"train-loss": 0.3}, None, False),
        ({"num-examples": 4, "norm_bit": 1}, None, True),
    ],
)
def test_train_metrics_are_checked_kind_by_kind(metrics, cap, ok):
    if ok:
        assert check_train_metrics(metrics, cap) == metrics
    else:
        with pytest.raises(PayloadError):
            check_train_metrics(metrics, cap)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*TRAIN_METRICS, "x", "labels"]),
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=True, allow_infinity=True),
            st.booleans(),
            st.lists(st.floats(allow_nan=True), max_size=3),
            st.lists(st.integers(), max_size=3),
        ),
    ),
    st.one_of(st.none(), st.integers(1, 100)),
)
def test_any_metrics_record_is_accepted_in_bounds_or_refused_never_crashes(metrics, cap):
    try:
        checked = check_train_metrics(metrics, cap)  # what a decoded record may hold, and more
    except PayloadError:
        return
    examples = checked["num-examples"]
    assert isinstance(examples, int) and 1 <= examples <= (cap or 10**9)
    assert all(math.isfinite(v) for v in checked.values())
