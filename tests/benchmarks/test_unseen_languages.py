"""benchmarks/unseen_languages.py end to end on the tiny model and real SIB-200 sentences:
the held-back rule, the three rows on one seed, and a later sitting's report that still
covers every table seed, and rows whose settings a dev choice changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fedlingua.data import default_data_root

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "unseen_languages.py"
LANGUAGES = "eng_Latn,fra_Latn,zho_Hans,amh_Ethi,hau_Latn,yor_Latn"


def _run(*args: str, runs: Path, out: Path) -> dict:
    env = os.environ | {"FEDLINGUA_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(SCRIPT), *args, "--model", "tiny", "--languages", LANGUAGES]
    cmd += ["--set", "federation.rounds=2", "--runs", str(runs), "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "unseen_languages.json").read_text())


def test_one_seed_end_to_end_then_a_report_from_another_sitting(tmp_path):
    if default_data_root() is None:
        pytest.skip("needs ../shared/data (SIB-200) or $FEDLINGUA_DATA_ROOT")
    runs, out = tmp_path / "runs", tmp_path / "out"
    data = _run("--seeds", "0", runs=runs, out=out)
    # every third language of each resource group, alphabetically, from the first
    assert data["held_back"] == ["eng_Latn", "amh_Ethi"]
    assert data["clients"] == ["fra_Latn", "zho_Hans", "hau_Latn", "yor_Latn"]
    seed0 = data["seeds"]["0"]
    for row in ("federated", "centralized", "mono_dev"):
        assert set(seed0[row]["languages"]) == {"eng_Latn", "amh_Ethi"}
        assert 0.0 <= seed0[row]["unseen"] <= 1.0
    # the comparisons the README's verdict reads, over the seeds with both rows
    versus = data["verdicts"]["federated_vs_mono_dev"]
    assert versus["seeds"] == [0] and versus["languages"] == 2 and 0 <= versus["ahead"] <= 2
    gap = 100 * (seed0["federated"]["unseen"] - seed0["mono_dev"]["unseen"])
    assert versus["differences"] == [pytest.approx(gap)]
    # the monolingual pick for a held-back language names client models only
    assert all(set(p) <= set(data["clients"]) for p in seed0["mono_dev"]["pick"].values())
    # a sitting on seed 1 reports the table's seeds: seed 0 read back, 1 and 2 pending
    later = _run("--report", "--seeds", "1", runs=runs, out=out)
    assert later["seeds"]["0"]["federated"] == seed0["federated"]
    assert "--seeds 0,1,2" in later["command"]
    assert "federated:prompt-encoder seed 1" in later["pending"]
    assert not any(p.endswith("seed 0") for p in later["pending"])
    # a seed whose transfer scoring was cut keeps the figure its results file records
    (runs / "seed0" / "monolingual-transfer.json").unlink()
    cut = _run("--report", runs=runs, out=out)
    assert cut["seeds"]["0"]["mono_dev"] == seed0["mono_dev"]
    assert not any(p.endswith("seed 0 (transfer)") for p in cut["pending"])
    # a fresh clone has no run directories: its report reads seed 0 back from the results
    # file, unless that file was made with other settings
    shutil.rmtree(runs)
    clone = _run("--report", runs=runs, out=out)
    assert clone["seeds"]["0"] == later["seeds"]["0"]
    assert not any(p.endswith("seed 0") for p in clone["pending"])
    # ... and a sitting there does not train again the rows that file keeps
    rows = "federated:prompt-encoder,centralized:prompt-encoder"
    again = _run("--seeds", "0", "--rows", rows, runs=runs, out=out)
    assert not (runs / "seed0" / "federated-prompt-encoder").exists()
    assert not (runs / "seed0" / "centralized-prompt-encoder").exists()
    assert again["seeds"]["0"] == clone["seeds"]["0"]
    # a dev choice that changes one row's settings (here the monolingual learning rate)
    # makes that row pending; the rows it does not touch are still read back
    path = out / "unseen_languages.json"
    recorded = json.loads(path.read_text())
    recorded["row_overrides"]["monolingual:prompt-encoder"]["train.lr"] = 0.5
    path.write_text(json.dumps(recorded))
    changed = _run("--report", runs=runs, out=out)
    assert changed["seeds"]["0"]["federated"] == seed0["federated"]
    assert changed["seeds"]["0"]["centralized"] == seed0["centralized"]
    assert "mono_dev" not in changed["seeds"]["0"]
    assert "monolingual:prompt-encoder seed 0 (run with other settings)" in changed["pending"]
    assert "monolingual:prompt-encoder seed 1" in changed["pending"]  # never run: no label
    other = _run("--report", "--set", "data.max_length=32", runs=runs, out=out)
    assert "federated:prompt-encoder seed 0" in other["pending"]
