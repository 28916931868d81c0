"""Run directories under damage: a truncated or corrupted checkpoint, metrics or tensor file
raises a CorruptFileError (CheckpointError for a checkpoint's structure) that names the
file; and a write that fails at any point leaves the previous file whole, never a partial
one, and no temporary file behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from fuzz_helpers import assert_names_file, tried
from hypothesis import given
from hypothesis import strategies as st

import fedlingua.io as fio
from fedlingua.io import CorruptFileError
from fedlingua.report.rundir import CheckpointError, RunDir

CKPT_FILES = ("latest.json", "state.safetensors", "server.safetensors", "progress.json")
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _states(seed: int) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return {
        "global": {"w": torch.randn(3, 2, generator=g)},
        "best/global": {"b": torch.randn(4, generator=g)},
    }


def _checkpoint(run: RunDir, server_round: int) -> None:
    server = {"global": {"m": np.full(3, float(server_round), dtype=np.float32)}}
    run.save_checkpoint(server_round, _states(server_round), server, {"best": {"global": [0.5, 1]}})
    run.append_metrics({"round": server_round, "loss": 1.0 / server_round})


def _path_of(run: RunDir, name: str, server_round: int) -> Path:
    if name == "latest.json":
        return run.path / "checkpoint" / name
    if name == "metrics.jsonl":
        return run.path / name
    return run.path / "checkpoint" / f"round-{server_round:04d}" / name


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.tuples(st.floats(0, 1), st.integers(0, 255))),
    st.tuples(st.just("bytes"), st.binary(max_size=64)),
    st.tuples(st.just("json"), json_value),
    st.tuples(st.just("delete"), st.none()),
)


def _damage(path: Path, how: tuple) -> None:
    kind, arg = how
    data = bytearray(path.read_bytes())
    if kind == "truncate":
        data = data[: int(arg * len(data))]
    elif kind == "flip" and data:
        data[min(int(arg[0] * len(data)), len(data) - 1)] = arg[1]
    elif kind == "bytes":
        data = bytearray(arg)
    elif kind == "json":
        data = bytearray(json.dumps(arg).encode())
    elif kind == "delete":
        path.unlink()
        return
    path.write_bytes(bytes(data))


@given(name=st.sampled_from([*CKPT_FILES, "metrics.jsonl"]), how=damage)
def test_damaged_checkpoint_resumes_or_raises_error_naming_the_file(name, how):
    tried("checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(tmp)
        _checkpoint(run, 1)
        _checkpoint(run, 2)
        target = _path_of(run, name, 2)
        _damage(target, how)
        try:
            ckpt = run.load_checkpoint()
            run.truncate_metrics(ckpt[0] if ckpt else 0)
        except CorruptFileError as err:
            assert_names_file(err, target)
            return
    if ckpt is None:  # no latest.json: no checkpoint, the run starts over
        assert (name, how[0]) == ("latest.json", "delete")
        return
    server_round, states, server, progress = ckpt
    assert server_round == 2 and isinstance(progress, dict)
    assert {k: set(v) for k, v in states.items()} == {"global": {"w"}, "best/global": {"b"}}
    assert all(torch.equal(states[m][k], t) for m, s in _states(2).items() for k, t in s.items())
    assert server["global"]["m"].tolist() == [2.0, 2.0, 2.0]


@given(how=damage)
def test_damaged_final_tensors_load_or_raise_error_naming_the_file(how):
    tried("checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(tmp)
        run.save_states("final.safetensors", _states(0))
        _damage(run.path / "final.safetensors", how)
        try:
            run.load_states("final.safetensors")
        except FileNotFoundError:
            assert how[0] == "delete"
        except CorruptFileError as err:
            assert_names_file(err, run.path / "final.safetensors")


# ---- atomic writes: fail at any point, the old file stays whole -----------------------------
WRITERS = {
    "write_text": lambda p, v: fio.write_text(p, f"text {v}\n" * 50),
    "write_json": lambda p, v: fio.write_json(p, {"v": v, "xs": list(range(50))}),
    "append_jsonl": lambda p, v: fio.append_jsonl(p, {"v": v}),
    "save_tensors": lambda p, v: fio.save_tensors(p, {"t": torch.full((64,), float(v))}),
}


class Crash(Exception):
    """The injected failure (a full disk, a killed process...)."""


def _failing_atomic(stage: str, fraction: float, target: Path, old: bytes | None):
    real = fio._atomic

    def atomic(path, write):
        def partial_write(tmp: str) -> None:
            write(tmp)
            if stage == "write":  # the disk filled up part-way through
                with open(tmp, "r+b") as fh:
                    fh.truncate(int(fraction * os.path.getsize(tmp)))
                # what a reader sees right now is still the old file (or none)
                assert (target.read_bytes() if target.exists() else None) == old
                raise Crash(errno.ENOSPC)

        return real(path, partial_write)

    return atomic


@given(
    writer=st.sampled_from(sorted(WRITERS)),
    stage=st.sampled_from(["write", "fsync", "replace", "none"]),
    fraction=st.floats(0, 1),
    exists=st.booleans(),
)
def test_failed_write_leaves_the_old_file_whole_and_no_temp_file(writer, stage, fraction, exists):
    tried("checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / ("file.safetensors" if writer == "save_tensors" else "file.json")
        if exists:
            WRITERS[writer](target, 1)
        old = target.read_bytes() if exists else None
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                mock.patch.object(fio, "_atomic", _failing_atomic(stage, fraction, target, old))
            )
            if stage in ("fsync", "replace"):
                stack.enter_context(mock.patch.object(fio.os, stage, side_effect=Crash(stage)))
            try:
                WRITERS[writer](target, 2)
                crashed = False
            except Crash:
                crashed = True
        assert crashed == (stage != "none")
        assert os.listdir(tmp) == ([target.name] if exists or not crashed else [])
        if crashed:
            assert (target.read_bytes() if target.exists() else None) == old
        elif writer == "save_tensors":
            assert torch.equal(fio.load_tensors(target)["t"], torch.full((64,), 2.0))


@given(fail_at=st.integers(0, 5), fraction=st.floats(0, 1))
def test_checkpoint_interrupted_at_any_write_resumes_a_whole_round(fail_at, fraction):
    tried("checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(tmp)
        _checkpoint(run, 1)
        real, calls = fio._atomic, []

        def atomic(path, write):
            calls.append(path)
            if len(calls) - 1 == fail_at:
                return _failing_atomic("write", fraction, Path(path), None)(path, write)
            return real(path, write)

        with mock.patch.object(fio, "_atomic", atomic):
            try:
                _checkpoint(run, 2)
            except (Crash, AssertionError):
                pass
        server_round, states, server, _ = run.load_checkpoint()
        assert server_round in (1, 2)
        assert all(
            torch.equal(states[m][k], t)
            for m, s in _states(server_round).items()
            for k, t in s.items()
        )
        assert float(server["global"]["m"][0]) == server_round
        assert not [p for p in Path(tmp).rglob("*") if p.name.endswith(".tmp")]


# ---- regressions (deterministic) ------------------------------------------------------------
@pytest.mark.parametrize("name", CKPT_FILES)
def test_truncated_checkpoint_file_names_the_file(tmp_path, name):
    """Was: SafetensorError / JSONDecodeError tracebacks on resume."""
    run = RunDir(tmp_path)
    _checkpoint(run, 1)
    target = _path_of(run, name, 1)
    target.write_bytes(target.read_bytes()[:5])
    with pytest.raises(CorruptFileError) as info:
        run.load_checkpoint()
    assert info.value.path == str(target) and str(target) in str(info.value)


@pytest.mark.parametrize(
    "latest",
    [[], {"round": 1}, {"folder": "round-0001"}, {"round": "1", "folder": "round-0001"},
     {"round": 1, "folder": "../../elsewhere"}, {"round": 2, "folder": "round-0001"}],
)  # fmt: skip
def test_malformed_latest_json_is_a_checkpoint_error(tmp_path, latest):
    """Was: KeyError/TypeError, or a 'folder' that leads outside the checkpoint directory."""
    run = RunDir(tmp_path)
    _checkpoint(run, 1)
    (tmp_path / "checkpoint" / "latest.json").write_text(json.dumps(latest))
    with pytest.raises(CheckpointError, match="latest.json"):
        run.load_checkpoint()


def test_missing_checkpoint_file_is_a_checkpoint_error(tmp_path):
    """Was: FileNotFoundError from inside safetensors, with no word about the checkpoint."""
    run = RunDir(tmp_path)
    _checkpoint(run, 1)
    (tmp_path / "checkpoint" / "round-0001" / "progress.json").unlink()
    with pytest.raises(CheckpointError, match="progress.json: missing"):
        run.load_checkpoint()


@pytest.mark.parametrize("line", ['{"round": 1', "[1, 2]", '{"loss": 1}', '{"round": "1"}'])
def test_damaged_metrics_line_is_an_error_naming_metrics_jsonl(tmp_path, line):
    """Was: JSONDecodeError / KeyError / TypeError from truncate_metrics on resume."""
    run = RunDir(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"round": 1}\n' + line + "\n")
    with pytest.raises(CorruptFileError, match="metrics.jsonl") as info:
        run.truncate_metrics(1)
    assert "line 2" in str(info.value) or "record 2" in str(info.value)


def test_progress_that_is_not_an_object_is_a_checkpoint_error(tmp_path):
    """Was: accepted, then AttributeError ('list' has no 'get') in the resumed run."""
    run = RunDir(tmp_path)
    _checkpoint(run, 1)
    (tmp_path / "checkpoint" / "round-0001" / "progress.json").write_text("[]")
    with pytest.raises(CheckpointError, match="progress.json"):
        run.load_checkpoint()


def test_flipped_byte_in_checkpoint_tensor_name_is_caught_by_the_checksum(tmp_path):
    """Was: a flipped byte in a tensor name loaded as a state without model 'global'."""
    run = RunDir(tmp_path)
    _checkpoint(run, 1)
    target = _path_of(run, "state.safetensors", 1)
    data = target.read_bytes()
    target.write_bytes(data.replace(b"global::w", b"globa ::w"))
    with pytest.raises(CorruptFileError, match="checksum mismatch") as info:
        run.load_checkpoint()
    assert info.value.path == str(target)


def test_tensor_files_without_a_checksum_still_load(tmp_path):
    """Files written before checksums existed (or by other tools) load as before."""
    fio.save_tensors(tmp_path / "old.safetensors", {"global::w": torch.ones(2)})
    assert torch.equal(
        RunDir(tmp_path).load_states("old.safetensors")["global"]["w"], torch.ones(2)
    )


def test_lost_server_state_file_is_a_checkpoint_error(tmp_path):
    """Was: a deleted server.safetensors resumed with FedAdam/FedYogi state silently reset."""
    run = RunDir(tmp_path)
    _checkpoint(run, 1)
    (tmp_path / "checkpoint" / "round-0001" / "server.safetensors").unlink()
    with pytest.raises(CheckpointError, match="server.safetensors: missing"):
        run.load_checkpoint()
