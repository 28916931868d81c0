"""Hub source: offline it fails fast and clearly; rows convert like any other source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fedlingua.data import DataError, DataUnavailableError, hub, load_dataset

PROBE = """
import json, sys, time
from fedlingua.data import DataUnavailableError, load_dataset
start = time.perf_counter()
try:
    load_dataset(sys.argv[1], languages=["hau_Latn"])
    out = {"error": None}
except DataUnavailableError as exc:
    out = {"error": str(exc)}
out["seconds"] = time.perf_counter() - start
print(json.dumps(out))
"""


def _run_offline_probe(tmp_path, env_updates: dict[str, str], source="hf:sib200") -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_")) and k.upper() != "HTTPS_PROXY"
    }
    env.update({"HF_HOME": str(tmp_path / "hf"), **env_updates})
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, source], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_offline_hub_fails_fast_with_a_clear_message(tmp_path):
    out = _run_offline_probe(tmp_path, {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert out["error"] is not None and out["seconds"] < 10
    msg = out["error"]
    assert "Davlan/sib200" in msg and "HF_HUB_OFFLINE=1 is set" in msg
    assert "load_dataset('sib200')" in msg and "load_dataset('cldr')" in msg


def test_unreachable_hub_fails_fast_without_offline_flags(tmp_path):
    # Nothing listens on port 9 of localhost: the probe fails at once, only the cache is tried.
    out = _run_offline_probe(tmp_path, {"HF_ENDPOINT": "http://127.0.0.1:9"}, "hf:masakhanews")
    assert out["error"] is not None and out["seconds"] < 10
    assert "cannot connect to 127.0.0.1:9" in out["error"]
    assert "load_dataset('masakhanews')" in out["error"]


def test_without_datasets_installed_hub_sources_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # what `import datasets` sees if absent
    assert load_dataset("cldr", languages=["fr"]).languages() == ["fr"]  # offline: no need
    with pytest.raises(DataUnavailableError, match=r"pip install 'fedlingua\[hub\]'"):
        load_dataset("hf:sib200")


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace the download with in-memory DatasetDicts: {(hub_id, config): DatasetDict}."""
    store: dict = {}
    monkeypatch.setattr(hub, "hub_unreachable", lambda timeout=3.0: None)
    monkeypatch.setattr(hub, "_fetch", lambda hub_id, config: store[(hub_id, config)])
    return store


def _xnli_like(n: int, label_offset: int = 0):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    feats = Features(
        {
            "premise": Value("string"),
            "hypothesis": Value("string"),
            "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
        }
    )
    split = {
        "premise": [f"p{i}" for i in range(n)],
        "hypothesis": [f"h{i}" for i in range(n)],
        "label": [(i + label_offset) % 3 for i in range(n)],
    }
    return DatasetDict(
        {s: Dataset.from_dict(split, features=feats) for s in ("train", "validation", "test")}
    )


def test_hub_preset_maps_columns_splits_and_class_labels(fake_hub):
    fake_hub[("facebook/xnli", "sw")] = _xnli_like(6)
    fake_hub[("facebook/xnli", "ur")] = _xnli_like(3, label_offset=1)
    ds = load_dataset("hf:xnli", languages=["sw", "ur"])
    assert ds.task == "pair" and ds.labels == ("entailment", "neutral", "contradiction")
    assert ds.sizes() == {
        "sw": {"train": 6, "dev": 6, "test": 6},
        "ur": {"train": 3, "dev": 3, "test": 3},
    }
    ex = ds.split("ur", "dev")[0]
    assert (ex.text, ex.text_pair, ex.label, ex.lang) == ("p0", "h0", 1, "ur")


def test_generic_hub_id_with_a_language_column_and_string_labels(fake_hub):
    from datasets import Dataset, DatasetDict

    rows = {
        "sentence": ["a", "b", "c", "d"],
        "topic": ["x", "y", "x", "y"],
        "language": ["de", "de", "fr", "fr"],
    }
    fake_hub[("someone/topics", None)] = DatasetDict(
        {"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)}
    )
    cols = {"text": "sentence", "label": "topic", "lang": "language"}
    ds = load_dataset("hf:someone/topics", columns=cols)
    assert ds.languages() == ["de", "fr"] and ds.labels == ("x", "y")
    assert [ex.text for ex in ds.split("fr", "train")] == ["c", "d"]
    assert ds.split("fr", "dev") == [] and any("no dev split" in n for n in ds.notes)


def test_hub_rows_are_validated_like_files(fake_hub):
    from datasets import Dataset, DatasetDict

    data = {"text": ["fine", "  ", "ok"], "label": ["a", "a", "b"]}
    fake_hub[("someone/bad", None)] = DatasetDict({"train": Dataset.from_dict(data)})
    with pytest.raises(DataError) as info:
        load_dataset("hf:someone/bad", columns={"text": "text", "label": "label"})
    assert "empty text" in str(info.value) and info.value.line == 2
    assert "hf:someone/bad/default/train" in str(info.value)
    ds = load_dataset("hf:someone/bad", columns={"text": "text"}, on_bad_rows="skip")
    assert len(ds.split("und", "train")) == 2 and sum(ds.skipped.values()) == 1


def test_hub_string_labels_unseen_in_train_and_unknown_languages(fake_hub):
    from datasets import Dataset, DatasetDict

    train = {"text": ["a", "b"], "label": ["x", "y"], "lang": ["de", "de"]}
    test = {"text": ["c"], "label": ["z"], "lang": ["de"]}
    fake_hub[("someone/drift", None)] = DatasetDict(
        {"train": Dataset.from_dict(train), "test": Dataset.from_dict(test)}
    )
    cols = {"text": "text", "label": "label", "lang": "lang"}
    with pytest.raises(DataError) as info:
        load_dataset("hf:someone/drift", columns=cols)
    assert "unknown label 'z'" in str(info.value) and "/test" in str(info.value)
    with pytest.raises(DataError, match="unknown language"):
        load_dataset("hf:someone/drift", columns=cols, languages=["fr"])
