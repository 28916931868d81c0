"""Loading backbones: the default, local folders, and hub ids (offline: fail fast, or use the
local Hugging Face cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fedlingua.models import (
    DEFAULT_MODEL,
    ModelUnavailableError,
    build_tiny_backbone,
    describe_backbone,
    load_backbone,
)
from fedlingua.models.loading import _max_positions

HUB_SCRIPT = """
import json, os, sys, time
from fedlingua.models import ModelUnavailableError, load_backbone

def attempt(name):
    start = time.perf_counter()
    try:
        b = load_backbone(name)
        return {"ok": True, "prefix": b.text_prefix, "source": b.source,
                "max_positions": b.max_positions, "hub_kernels": b.encoder.use_kernels,
                "seconds": time.perf_counter() - start}
    except ModelUnavailableError as exc:
        return {"ok": False, "error": str(exc), "seconds": time.perf_counter() - start}

results = {}
os.environ["HF_HUB_OFFLINE"] = "1"
results["offline"] = attempt("xlm-roberta-base")
results["cached"] = attempt("fedlingua-test/tiny-e5")
del os.environ["HF_HUB_OFFLINE"]
results["unreachable"] = attempt("intfloat/multilingual-e5-small")
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def hub_attempts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Hub ids loaded in a fresh process with an empty HF cache holding one tiny model and a
    hub endpoint that refuses connections (port 9 on loopback)."""
    hf_home = tmp_path_factory.mktemp("hf-home")
    snapshot = hf_home / "hub" / "models--fedlingua-test--tiny-e5" / "snapshots" / ("0" * 40)
    tiny = build_tiny_backbone()
    tiny.encoder.save_pretrained(snapshot)
    tiny.tokenizer.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_offline_hub_id_fails_fast_naming_cause(hub_attempts):
    result = hub_attempts["offline"]
    assert not result["ok"] and result["seconds"] < 10
    assert "HF_HUB_OFFLINE" in result["error"]
    assert "not in the local Hugging Face cache" in result["error"]
    assert repr(DEFAULT_MODEL) in result["error"]


def test_unreachable_hub_fails_fast_naming_cause(hub_attempts):
    result = hub_attempts["unreachable"]
    assert not result["ok"] and result["seconds"] < 10
    assert "unreachable" in result["error"] and "127.0.0.1:9" in result["error"]
    assert repr(DEFAULT_MODEL) in result["error"]


def test_hub_id_in_local_hf_cache_loads_offline(hub_attempts):
    result = hub_attempts["cached"]
    assert result["ok"], result
    assert result["prefix"] == "query: "  # the id names an e5 model
    assert result["source"].endswith("0" * 40)
    assert result["max_positions"] == 128
    assert result["hub_kernels"] is False


def test_missing_local_folder_is_reported(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="does not exist.*'e5-small'"):
        load_backbone(str(tmp_path / "missing"))


def test_default_backbone(e5, e5_dir: Path):
    assert e5.name == DEFAULT_MODEL and Path(e5.source) == e5_dir
    assert e5.text_prefix == "query: " and e5.max_positions == 512
    assert type(e5.encoder).__name__ == "BertModel" and e5.encoder.pooler is None
    assert next(e5.encoder.parameters()).dtype == torch.float32


def test_local_folder_loads_without_new_weight_warnings(e5_dir: Path, capfd):
    backbone = load_backbone(str(e5_dir), dtype=torch.bfloat16)
    err = capfd.readouterr().err
    assert "MISSING" not in err and "newly initialized" not in err
    assert "Loading weights" not in err  # no progress bar for a local load
    assert backbone.text_prefix == "query: "  # from the folder's manifest
    assert next(backbone.encoder.parameters()).dtype == torch.bfloat16


def test_plain_folder_gets_no_prefix(tmp_path: Path):
    tiny = build_tiny_backbone()
    tiny.encoder.save_pretrained(tmp_path / "plain-bert")
    tiny.tokenizer.save_pretrained(tmp_path / "plain-bert")
    backbone = load_backbone(str(tmp_path / "plain-bert"))
    assert backbone.text_prefix == "" and backbone.max_positions == 128
    assert backbone.encoder.pooler is None


def test_loaded_backbones_keep_transformers_own_layers(e5, tmp_path: Path):
    """transformers would swap layers for hub-downloaded kernels on a GPU's first train() or
    eval() where the `kernels` package is installed (and crash offline); loads opt out."""
    tiny = build_tiny_backbone()
    tiny.encoder.save_pretrained(tmp_path / "bert")
    tiny.tokenizer.save_pretrained(tmp_path / "bert")
    for backbone in (e5, load_backbone(str(tmp_path / "bert"))):
        backbone.encoder.train()
        backbone.encoder.eval()
        assert backbone.encoder.use_kernels is False
        assert getattr(backbone.encoder, "kernels_mode", None) is None


def test_describe_backbone_counts_parts(e5):
    info = describe_backbone(e5)
    params = info["parameters"]
    assert params["word_embeddings"] == 250037 * 384
    assert params["other_embeddings"] == (512 + 2) * 384 + 2 * 384
    per_layer = 4 * (384 * 384 + 384) + 2 * (384 * 1536) + 1536 + 384 + 4 * 384
    assert params["encoder_layers"] == 12 * per_layer
    assert params["total"] == sum(v for k, v in params.items() if k != "total")
    assert params["other"] == 0  # no pooler
    assert (info["hidden_size"], info["num_layers"], info["vocab_size"]) == (384, 12, 250037)
    assert info["source"] == e5.source


def test_xlmr_style_positions_exclude_padding_offset():
    from transformers import XLMRobertaConfig

    config = XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1)

    class Tok:
        model_max_length = 512

    assert _max_positions(config, Tok()) == 512


def test_tiny_by_name_is_deterministic():
    a, b = load_backbone("tiny"), load_backbone("tiny")
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    for (name, p), (_, q) in zip(
        a.encoder.named_parameters(), b.encoder.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), name
