"""The run directory: everything a run leaves behind, written atomically.

    config.toml        resolved configuration
    environment.json   versions, threads, seed
    metrics.jsonl      one line per completed round
    checkpoint/        latest.json -> round-NNNN/{state,server}.safetensors + progress.json
    final.safetensors  final trainable tensors (best.safetensors with dev selection)
    results.json       per-language scores, averages, parameters, communication, time
    report.md          the per-language table

A checkpoint round folder is complete before `latest.json` points at it, so a
crash at any moment leaves the previous round resumable.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from fedlingua.io import (
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


def _unflatten(flat: dict[str, torch.Tensor]) -> States:
    states: States = {}
    for key, t in flat.items():
        model, _, name = key.partition("::")
        states.setdefault(model, {})[name] = t
    return states


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

    def metrics(self) -> list[dict]:
        return read_jsonl(self.path / "metrics.jsonl")

    def append_metrics(self, record: dict) -> None:
        append_jsonl(self.path / "metrics.jsonl", record)

    def truncate_metrics(self, last_round: int) -> list[dict]:
        """Drop metric lines past the last checkpointed round (they will be redone)."""
        kept = [m for m in self.metrics() if m["round"] <= last_round]
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
        save_tensors(self.path / filename, _flatten(states))

    def load_states(self, filename: str) -> States:
        return _unflatten(load_tensors(self.path / filename))

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
        save_tensors(folder / "state.safetensors", _flatten(states))
        server_flat = {
            f"{model}::{k}": torch.from_numpy(np.ascontiguousarray(v))
            for model, flat in server_states.items()
            for k, v in flat.items()
        }
        if server_flat:  # stateless strategies (FedAvg...) have nothing to save
            save_tensors(folder / "server.safetensors", server_flat)
        write_json(folder / "progress.json", progress)
        write_json(ckpt / "latest.json", {"round": server_round, "folder": folder.name})
        for old in ckpt.glob("round-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> tuple[int, States, dict[str, dict[str, np.ndarray]], dict] | None:
        latest = self.path / "checkpoint" / "latest.json"
        if not latest.exists():
            return None
        info = read_json(latest)
        folder = self.path / "checkpoint" / info["folder"]
        states = _unflatten(load_tensors(folder / "state.safetensors"))
        server: dict[str, dict[str, np.ndarray]] = {}
        server_file = folder / "server.safetensors"
        for key, t in (load_tensors(server_file) if server_file.exists() else {}).items():
            model, _, name = key.partition("::")
            server.setdefault(model, {})[name] = t.numpy()
        return int(info["round"]), states, server, read_json(folder / "progress.json")


def _dumps(record: dict) -> str:
    import json

    return json.dumps(record, default=str) + "\n"
