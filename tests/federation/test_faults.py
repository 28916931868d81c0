"""Faults a server round survives, in-process: bad tensors, quorum, silent clients, bad configs.

The same `Federation.step` runs under Flower (tests/deployment runs these faults on
a loopback SuperLink + SuperNodes); here each fault is checked exactly and fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
from flwr.app import Array, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedlingua.config import ConfigError, FederationConfig, RunConfig
from fedlingua.federation.faults import HUGE_TENSOR, KINDS, corrupt, parse_fault
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    METRICS_KEY,
    PayloadError,
    check_record_size,
    record_size_limit,
    record_to_state,
    state_to_record,
)
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy

INIT = {"w": torch.zeros(2, 3), "b": torch.zeros(3)}
EXPECTED = {k: tuple(v.shape) for k, v in INIT.items()}


def _reply(value: float, n: int = 10) -> RecordDict:
    state = {"w": torch.full((2, 3), value), "b": torch.full((3,), value)}
    return RecordDict(
        {ARRAYS_KEY: state_to_record(state), METRICS_KEY: MetricRecord({"num-examples": n})}
    )


def _faulty(value: float, spec: str):
    def handler(content):
        reply = _reply(value)
        reply[ARRAYS_KEY] = corrupt(reply[ARRAYS_KEY], spec)
        return reply

    return handler


def _federation(handlers, grid=None, strategy="fedavg", **kw) -> Federation:
    return Federation(
        "global",
        make_strategy(FederationConfig(strategy=strategy), len(handlers), client_lr=1e-2),
        grid or InProcessGrid(handlers),
        {k: v.clone() for k, v in INIT.items()},
        lambda rnd: ConfigRecord({"lr": 0.1}),
        seed=0,
        node_names={i: f"c{i}" for i in handlers},
        **kw,
    )


# ---- bad tensors ----------------------------------------------------------------------------
def test_every_fault_kind_parses_and_bad_specs_are_refused():
    assert parse_fault("scale:100") == ("scale", 100.0)
    assert parse_fault("random") == ("random", None)
    for bad in ("explode", "scale", "scale:lots"):
        with pytest.raises(ValueError, match="fedlingua-fault"):
            parse_fault(bad)
    assert parse_fault("huge:64") == ("huge", 64.0) and parse_fault("stall:30") == ("stall", 30.0)
    for bad in ("huge", "stall", "stall:-1", "huge:0", "huge:inf"):
        with pytest.raises(ValueError, match="fedlingua-fault"):
            parse_fault(bad)
    assert set(KINDS) == {
        "scale",
        "random",
        "wrong-shape",
        "nan",
        "drop-tensor",
        "pickled",
        "huge",
        "stall",
    }


def test_malformed_tensors_are_rejected_logged_and_the_round_goes_on(caplog):
    handlers = {
        1: lambda c: _reply(1.0),
        2: lambda c: _reply(3.0),
        3: _faulty(5.0, "wrong-shape"),
        4: _faulty(5.0, "nan"),
        5: _faulty(5.0, "drop-tensor"),
        6: _faulty(5.0, "pickled"),
    }
    fed = _federation(handlers)
    with caplog.at_level("WARNING", logger="fedlingua.federation"):
        out = fed.step(1)
    assert sorted(out.succeeded) == ["c1", "c2"] and out.updated and out.skipped is None
    assert "shape" in out.failed["c3"]
    assert "NaN" in out.failed["c4"]
    assert "names differ" in out.failed["c5"]
    # a pickled object array is refused undecoded (numpy's loader with allow_pickle=False)
    assert "allow_pickle" in out.failed["c6"] and "undecodable" in out.failed["c6"]
    assert torch.allclose(fed.state["w"], torch.full((2, 3), 2.0))
    logged = " | ".join(r.getMessage() for r in caplog.records)
    for i in (3, 4, 5, 6):
        assert f"global round 1: rejected reply from c{i}: {out.failed[f'c{i}'][16:]}" in logged


def test_an_oversized_reply_is_refused_by_its_size_before_anything_is_decoded():
    # huge:1 appends a 1 MiB tensor; its bytes are not even a valid .npy array, so a
    # server that decoded before checking sizes would report "undecodable" instead
    huge = _reply(5.0)
    huge[ARRAYS_KEY] = corrupt(huge[ARRAYS_KEY], "huge:1")
    assert huge[ARRAYS_KEY][HUGE_TENSOR].numpy().nbytes == 2**20
    huge[ARRAYS_KEY][HUGE_TENSOR] = Array(
        dtype="float32", shape=(2**18,), stype="numpy.ndarray", data=b"\x00" * 2**20
    )
    # the same bytes spread over the expected tensors (padding) are refused too
    padded = _reply(5.0)
    padded[ARRAYS_KEY]["w"] = Array(
        dtype="float32", shape=(2, 3), stype="numpy.ndarray", data=b"\x00" * 2**20
    )
    fed = _federation({1: lambda c: _reply(1.0), 2: lambda c: huge, 3: lambda c: padded})
    out = fed.step(1)
    assert out.succeeded == ["c1"] and out.updated
    limit = record_size_limit(EXPECTED)
    assert limit == 9 * 8 + 2 * 1024
    for who in ("c2", "c3"):
        assert "refused before decoding" in out.failed[who], out.failed
        assert f"the {limit} bytes the 2 expected tensors can take" in out.failed[who]
    with pytest.raises(PayloadError, match="refused before decoding"):
        check_record_size(huge[ARRAYS_KEY], EXPECTED)
    check_record_size(state_to_record(INIT), EXPECTED)  # a well-formed record passes
    check_record_size(state_to_record({k: v.double() for k, v in INIT.items()}), EXPECTED)


def test_a_stalling_node_replies_late_with_its_tensors_untouched():
    record = state_to_record(INIT)
    same = corrupt(record, "stall:30")
    assert all(torch.equal(record_to_state(same)[k], INIT[k]) for k in INIT)


def test_decoding_never_unpickles():
    record = corrupt(state_to_record(INIT), "pickled")
    with pytest.raises(PayloadError, match="allow_pickle"):
        record_to_state(record)


def test_a_reply_with_a_garbage_example_count_is_rejected_not_a_crash():
    bad = _reply(9.0)
    bad[METRICS_KEY] = MetricRecord({"num-examples": -4})
    fed = _federation({1: lambda c: _reply(1.0), 2: lambda c: bad})
    out = fed.step(1)
    assert out.succeeded == ["c1"] and "num-examples" in out.failed["c2"]


# ---- quorum ---------------------------------------------------------------------------------
def test_below_quorum_of_valid_replies_the_round_is_skipped_and_state_kept():
    def crash(content):
        raise RuntimeError("site down")

    fed = _federation({1: lambda c: _reply(1.0), 2: crash, 3: _faulty(1.0, "nan")}, min_clients=2)
    out = fed.step(1)
    assert not out.updated and out.skipped.startswith("quorum not met: 1 valid reply")
    assert torch.equal(fed.state["w"], INIT["w"])
    fed.min_clients = 1  # the same replies with a lower quorum aggregate
    assert fed.step(2).updated


class _ShrinkingGrid(InProcessGrid):
    """An in-process grid on which only the first `online` nodes are connected."""

    def __init__(self, handlers, online: int) -> None:
        super().__init__(handlers)
        self.online = online

    def get_node_ids(self) -> Iterable[int]:
        return list(self._handlers)[: self.online]


def test_below_quorum_of_connected_clients_nothing_is_sent():
    calls = []

    def handler(content):
        calls.append(1)
        return _reply(1.0)

    handlers = {1: handler, 2: handler, 3: handler}
    grid = _ShrinkingGrid(handlers, online=1)
    fed = _federation(handlers, grid=grid, min_clients=2)
    out = fed.step(1)
    assert out.skipped == "quorum not met: 1 client(s) connected, federation.min_clients=2"
    assert not calls and not out.sampled and not out.updated
    grid.online = 2  # two sites back: the round runs with them, no waiting for the third
    out = fed.step(2)
    assert out.updated and sorted(out.succeeded) == ["c1", "c2"] and len(calls) == 2


# ---- a client that never answers ------------------------------------------------------------
class _SilentNodeGrid(Grid):
    """Replies arrive by polling, as on Flower's grid; node 3 never answers."""

    def __init__(self, handlers) -> None:
        self.inner = InProcessGrid(handlers)  # delivers a message to its handler
        self.pushed: list[Message] = []
        self.polls = 0

    run = property(lambda self: self.inner.run)

    def set_run(self, run) -> None:
        self.inner.set_run(run)

    def create_message(self, *args, **kwargs) -> Message:
        return self.inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        self.pushed = list(messages)
        return [f"m{i}" for i in range(len(self.pushed))]

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        self.polls += 1
        out = []
        for mid in message_ids:
            msg = self.pushed[int(mid[1:])]
            if msg.metadata.dst_node_id != 3:
                reply = self.inner._deliver(msg)
                reply.metadata.__dict__["_reply_to_message_id"] = mid
                out.append(reply)
        return out

    def send_and_receive(self, messages, *, timeout=None):
        raise AssertionError("a polling grid is driven by push/pull, with the round timeout")


def test_a_silent_client_fails_after_the_round_timeout_and_the_round_completes():
    handlers = {1: lambda c: _reply(1.0), 2: lambda c: _reply(3.0), 3: lambda c: _reply(7.0)}
    fed = _federation(handlers, grid=_SilentNodeGrid(handlers), timeout=0.6, poll_s=0.05)
    start = time.perf_counter()
    out = fed.step(1)
    took = time.perf_counter() - start
    assert 0.6 <= took < 5, took
    assert sorted(out.succeeded) == ["c1", "c2"] and out.failed == {
        "c3": "no reply before the timeout"
    }
    assert torch.allclose(fed.state["w"], torch.full((2, 3), 2.0))
    assert fed.grid.polls >= 5  # polled every poll_s, not once


# ---- config ---------------------------------------------------------------------------------
def test_quorum_and_timeout_are_validated(tmp_path, tiny_config, tiny_backbone):
    with pytest.raises(ConfigError, match="min_clients"):
        RunConfig.load(None, ["federation.min_clients=0"])
    with pytest.raises(ConfigError, match="round_timeout"):
        RunConfig.load(None, ["federation.round_timeout=0"])
    cfg = RunConfig.load(None, ["federation.min_clients=2", "federation.round_timeout=30"])
    assert (cfg.federation.min_clients, cfg.federation.round_timeout) == (2, 30.0)

    from fedlingua.engine import run

    cfg = tiny_config(tmp_path, federation__min_clients=4)  # 3 languages, 3 clients
    with pytest.raises(ConfigError, match="min_clients=4 but only 3 sites hold training data"):
        run(cfg, backbone=tiny_backbone, log=lambda line: None)


def test_the_server_app_resumes_only_a_run_of_the_same_config(tmp_path, tiny_config):
    from fedlingua.flower_app.server_app import resumable
    from fedlingua.report import RunDir

    cfg = tiny_config(tmp_path, name="crashed")
    run_dir = tmp_path / "crashed"
    RunDir(run_dir).write_config(cfg.to_toml())
    assert resumable(cfg, str(run_dir)) == run_dir
    with pytest.raises(ConfigError, match="absolute path"):
        resumable(cfg, "crashed")
    with pytest.raises(ConfigError, match="not a run directory"):
        resumable(cfg, str(tmp_path / "nothing-here"))
    cfg.federation.rounds += 1
    with pytest.raises(ConfigError, match="another config"):
        resumable(cfg, str(run_dir))


# ---- nothing a peer sends, and nothing on disk, is ever unpickled ---------------------------
def test_no_code_path_unpickles():
    """Tensors travel as numpy `.npy` bytes decoded with allow_pickle=False and are stored as
    safetensors; everything else is JSON/TOML. No pickle, torch.load or np.load with pickles."""
    import re

    import fedlingua

    for path in Path(fedlingua.__file__).parent.rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        for banned in ("import pickle", "from pickle", "torch.load(", "joblib", "dill", "marshal"):
            assert banned not in code, f"{path}: {banned}"
        for call in re.findall(r"np\.load\(([^)]*)\)", code):
            assert "allow_pickle=False" in call, f"{path}: np.load({call})"
        if path.name != "faults.py":  # which builds a pickled payload to prove it is refused
            assert "allow_pickle=True" not in code, path


def test_checkpoints_and_results_are_safetensors_and_json_only(
    tmp_path, tiny_config, tiny_backbone
):
    from fedlingua.engine import run

    cfg = tiny_config(tmp_path, name="files", federation__strategy="fedadam")
    results = run(cfg, backbone=tiny_backbone, log=lambda line: None)
    files = [p for p in Path(results["run_dir"]).rglob("*") if p.is_file()]
    assert any(p.parent.name.startswith("round-") for p in files)  # the checkpoint is there
    # data as safetensors/JSON/TOML, the report and its pictures (PNG): nothing pickled
    allowed = {".safetensors", ".json", ".jsonl", ".toml", ".md", ".png"}
    assert {p.suffix for p in files} <= allowed, files
    assert not [p for p in files if p.name.startswith(".")]  # no temporary file left behind


class _RollCallGrid:
    """Node 1 is a stale entry of the SuperLink (NODE_UNAVAILABLE) for the first `stale`
    roll calls; nodes 2 and 3 play clients fr and sw; node 4 answers with `other_error`."""

    def __init__(self, stale: int, other_error: bool = False, silent: int = 0) -> None:
        self.stale, self.other_error, self.calls = stale, other_error, 0
        self.silent = silent  # node 3's query goes undelivered (no reply) this many times

    def get_node_ids(self):
        return [1, 2, 3] + ([4] if self.other_error else [])

    def send_and_receive(self, messages, *, timeout=None):
        from types import SimpleNamespace

        from flwr.app import ConfigRecord, Error, RecordDict
        from flwr.common.constant import ErrorCode

        from fedlingua.federation.payload import CLIENT_KEY

        self.calls += 1
        out = []
        for msg in messages:
            node = msg.metadata.dst_node_id
            if node == 3 and self.calls <= self.silent:
                continue
            error = None
            if node == 1 and self.calls <= self.stale:
                error = Error(ErrorCode.NODE_UNAVAILABLE, "Error: Node Unavailable")
            elif node == 4:
                error = Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, "ConfigError: bad config")
            client = {1: "lg", 2: "fr", 3: "sw"}.get(node, "")
            out.append(
                SimpleNamespace(
                    metadata=SimpleNamespace(src_node_id=node),
                    has_error=lambda e=error: e is not None,
                    error=error,
                    content=RecordDict(
                        {CLIENT_KEY: ConfigRecord({"client-id": client, "lang": client})}
                    ),
                )
            )
        return out


def test_the_roll_call_waits_out_a_node_the_superlink_still_lists_but_cannot_reach(monkeypatch):
    # after a SuperLink restart its state lists a killed SuperNode as online until two
    # heartbeat intervals pass; the resumed ServerApp used to stop on that node's error
    from types import SimpleNamespace

    from fedlingua.federation import rollcall

    def query(content, dst_node_id, message_type):  # a QUERY outside a Flower run
        return SimpleNamespace(metadata=SimpleNamespace(dst_node_id=dst_node_id))

    monkeypatch.setattr(rollcall, "Message", query)
    monkeypatch.setattr(rollcall.time, "sleep", lambda s: None)
    grid = _RollCallGrid(stale=2)
    assert rollcall.roll_call(grid, 3, 60).names == {1: "lg", 2: "fr", 3: "sw"}
    assert grid.calls == 3
    grid = _RollCallGrid(stale=0, silent=1)  # ... or whose query is not delivered at all
    assert rollcall.roll_call(grid, 3, 60).names == {1: "lg", 2: "fr", 3: "sw"}
    assert grid.calls == 2
    # a node that is reachable but cannot take part is refused, named, and left out
    roster = rollcall.roll_call(_RollCallGrid(stale=0, other_error=True), 3, 60)
    assert roster.names == {1: "lg", 2: "fr", 3: "sw"}
    assert "SuperNode 4 cannot take part: ConfigError" in roster.refused["node 4"]
    with pytest.raises(RuntimeError, match="SuperNode 4 cannot take part: ConfigError"):
        rollcall.roll_call(_RollCallGrid(stale=0, other_error=True), 4, 60)
    # one that never comes back: the roll call gives up after wait_s, naming it
    clock = iter(range(0, 10_000, 30))
    monkeypatch.setattr(rollcall.time, "monotonic", lambda: next(clock))
    with pytest.raises(RuntimeError, match=r"2 of 3 sites .* none from nodes \[1\] .*Unavailable"):
        rollcall.roll_call(_RollCallGrid(stale=10**6), 3, 60)


class _ReversedGrid(InProcessGrid):
    """An in-process grid whose replies come back in the reverse order of the nodes."""

    def pull_messages(self, message_ids):
        return list(reversed(list(super().pull_messages(message_ids))))


def test_the_aggregate_does_not_depend_on_the_order_replies_arrive_in():
    # float sums depend on the order of their terms: a deployment, where replies come back
    # as nodes finish, must aggregate what the in-process run (node order) aggregates
    values = {1: 3.0e7, 2: 1.0, 3: -3.0e7, 4: 0.3}
    handlers = {i: (lambda c, v=v, n=7 + i: _reply(v, n=n)) for i, v in values.items()}
    in_order = _federation(handlers)
    reversed_ = _federation(handlers, grid=_ReversedGrid(handlers))
    a, b = in_order.step(1), reversed_.step(1)
    assert a.updated and b.updated and sorted(a.succeeded) == sorted(b.succeeded)
    for key in INIT:
        assert torch.equal(in_order.state[key], reversed_.state[key]), key
