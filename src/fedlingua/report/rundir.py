"""The run directory: everything a run leaves behind, written atomically.

    config.toml        resolved configuration
    environment.json   versions, threads, seed
    metrics.jsonl      one line per completed round
    checkpoint/        latest.json -> round-NNNN/{state,server}.safetensors + progress.json
    final.safetensors  final trainable tensors (best.safetensors with dev selection)
    results.json       per-language scores, averages, parameters, communication, time
    report.md          the per-language table

A checkpoint round folder is complete before `latest.json` points at it, so a
crash at any moment leaves the previous round resumable. A checkpoint that is
damaged anyway (truncated copy, edited by hand) raises `CheckpointError` naming the
file, never a KeyError or a safetensors traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from fedlingua.io import (
    CorruptFileError,
    append_jsonl,
    load_tensors,
    read_json,
    read_jsonl,
    save_tensors,
    write_json,
    write_text,
)

States = dict[str, dict[str, torch.Tensor]]


def _flatten(states: States) -> dict[str, torch.Tensor]:
    return {f"{model}::{name}": t for model, state in states.items() for name, t in state.items()}


class CheckpointError(CorruptFileError):
    """A run directory's checkpoint or saved tensors cannot be resumed from."""


def _unflatten(flat: dict[str, torch.Tensor], path: Path) -> States:
    states: States = {}
    for key, t in flat.items():
        model, sep, name = key.partition("::")
        if not sep:
            raise CheckpointError(path, f"tensor {key!r} is not named '<model>::<name>'")
        states.setdefault(model, {})[name] = t
    return states


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(path, "missing: the checkpoint is incomplete")
    return path


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ---- plain files -----------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    def write_config(self, toml_text: str) -> None:
        write_text(self.config_path, toml_text)

    def write_environment(self, env: dict) -> None:
        write_json(self.path / "environment.json", env)

    def write_sites(self, roster: dict) -> None:
        """sites.json: what each site reported at the roll call (identity, languages,
        training examples per language, label names)."""
        write_json(self.path / "sites.json", roster)

    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / "metrics.jsonl")

    def append_metrics(self, record: dict) -> None:
        append_jsonl(self.path / "metrics.jsonl", record)

    def truncate_metrics(self, last_round: int) -> list[dict]:
        """Drop metric lines past the last checkpointed round (they will be redone)."""
        records = self.metrics()
        for number, m in enumerate(records, start=1):
            if not isinstance(m, dict) or not _is_round(m.get("round")):
                raise CheckpointError(self.path / "metrics.jsonl", f"record {number}: no 'round'")
        kept = [m for m in records if m["round"] <= last_round]
        write_text(self.path / "metrics.jsonl", "".join(_dumps(m) for m in kept))
        return kept

    def write_results(self, results: dict) -> None:
        write_json(self.path / "results.json", results)

    def results(self) -> dict | None:
        p = self.path / "results.json"
        return read_json(p) if p.exists() else None

    def write_report(self, text: str) -> None:
        write_text(self.path / "report.md", text)

    def save_states(self, filename: str, states: States) -> None:
        save_tensors(self.path / filename, _flatten(states), checksum=True)

    def load_states(self, filename: str) -> States:
        return _unflatten(load_tensors(self.path / filename), self.path / filename)

    # ---- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(
        self,
        server_round: int,
        states: States,
        server_states: dict[str, dict[str, np.ndarray]],
        progress: dict,
    ) -> None:
        ckpt = self.path / "checkpoint"
        folder = ckpt / f"round-{server_round:04d}"
        if folder.exists():
            shutil.rmtree(folder)
        save_tensors(folder / "state.safetensors", _flatten(states), checksum=True)
        server_flat = {
            f"{model}::{k}": torch.from_numpy(np.ascontiguousarray(v))
            for model, flat in server_states.items()
            for k, v in flat.items()
        }
        if server_flat:  # stateless strategies (FedAvg...) have nothing to save
            save_tensors(folder / "server.safetensors", server_flat, checksum=True)
        write_json(folder / "progress.json", progress)
        # "server" tells a resume whether server.safetensors must be there (else a lost file
        # would silently reset FedAdam/FedYogi moments).
        latest = {"round": server_round, "folder": folder.name, "server": bool(server_flat)}
        write_json(ckpt / "latest.json", latest)
        for old in ckpt.glob("round-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> tuple[int, States, dict[str, dict[str, np.ndarray]], dict] | None:
        latest = self.path / "checkpoint" / "latest.json"
        if not latest.exists():
            return None
        server_round, has_server = _read_latest(latest)
        folder = self.path / "checkpoint" / f"round-{server_round:04d}"
        state_file = _require(folder / "state.safetensors")
        states = _unflatten(load_tensors(state_file), state_file)
        server_file = folder / "server.safetensors"
        if has_server:  # None: written before the flag existed, the file may be absent
            _require(server_file)
        server_flat = load_tensors(server_file) if server_file.exists() else {}
        try:
            server = {
                model: {name: t.numpy() for name, t in flat.items()}
                for model, flat in _unflatten(server_flat, server_file).items()
            }
        except TypeError as exc:  # a dtype numpy lacks (bfloat16): not what save_checkpoint wrote
            raise CheckpointError(server_file, f"unexpected tensor type ({exc})") from None
        progress = read_json(_require(folder / "progress.json"))
        if not isinstance(progress, dict):
            raise CheckpointError(folder / "progress.json", "expected a JSON object")
        return server_round, states, server, progress


def _is_round(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_latest(latest: Path) -> tuple[int, bool | None]:
    """The round latest.json points at, and whether that round saved server state. The
    folder name must be the one save_checkpoint writes (so a damaged pointer can never lead
    outside the checkpoint folder)."""
    info = read_json(latest)
    if not isinstance(info, dict) or not _is_round(info.get("round")):
        raise CheckpointError(latest, 'expected {"round": N, "folder": "round-NNNN", ...}')
    server_round, has_server = info["round"], info.get("server")
    if info.get("folder") != f"round-{server_round:04d}" or has_server not in (True, False, None):
        raise CheckpointError(latest, 'expected {"round": N, "folder": "round-NNNN", ...}')
    return server_round, has_server


def _dumps(record: dict) -> str:
    import json

    return json.dumps(record, default=str) + "\n"
