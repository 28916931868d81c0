"""Fused rounds (`federation.fuse_clients = K`) train what sequential rounds train.

The server side is the same object either way; only the in-process grid answers K
clients at once. With every dropout off the final tensors agree within the tolerance of
tests/test_fused.py (float reassociation), scaled for two rounds of aggregation; client
failures and the measured payloads are identical.
"""

from __future__ import annotations

import copy

import pytest
import torch

from fedlingua.config import ConfigError
from fedlingua.engine import load_final_states, run

QUIET = {"log": lambda line: None}


@pytest.fixture(scope="module")
def still_backbone(tiny_backbone):
    """The tiny backbone with its own (hidden, attention) dropout off."""
    backbone = copy.deepcopy(tiny_backbone)
    for module in backbone.encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return backbone


@pytest.mark.parametrize("method", ["prompt-encoder", "soft-prompt"])
def test_fused_rounds_equal_sequential_rounds(
    tmp_path, tiny_config, still_backbone, method, monkeypatch
):
    import fedlingua.fused

    fused_sizes: list[int] = []
    real = fedlingua.fused.fused_local_update

    def spy(bench, states, *args, **kwargs):
        fused_sizes.append(len(states))
        return real(bench, states, *args, **kwargs)

    monkeypatch.setattr(fedlingua.fused, "fused_local_update", spy)
    kw = dict(
        method__name=method,
        model__dropout=0.0,
        data__clients_per_language=2,
        federation__client_dropout=0.2,
        federation__strategy="fedprox",
        train__local_steps=3,
    )
    results = {}
    for k in (1, 4):
        cfg = tiny_config(tmp_path, name=f"k{k}", federation__fuse_clients=k, **kw)
        results[k] = run(cfg, backbone=still_backbone, **QUIET)
    assert max(fused_sizes) == 4 and len(fused_sizes) == 2 * 2  # 6 clients: 4 + 2 a round
    assert results[1]["failures"] == results[4]["failures"]
    assert results[1]["failures"], "the case should include a client that drops out"
    assert results[1]["communication"] == results[4]["communication"]
    seq, fused = (load_final_states(tmp_path / f"k{k}") for k in (1, 4))
    for model, state in seq.items():
        for name, value in state.items():
            torch.testing.assert_close(fused[model][name], value, atol=5e-6, rtol=2e-5)


def test_fusing_needs_a_prompt_method_and_no_client_side_protocol(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="fuse_clients"):
        tiny_config(tmp_path, method__name="lora", federation__fuse_clients=2)
    with pytest.raises(ConfigError, match="fuse_clients"):
        tiny_config(tmp_path, privacy__secure_aggregation=True, federation__fuse_clients=2)
    with pytest.raises(ConfigError, match="fuse_clients"):
        tiny_config(tmp_path, paradigm="monolingual", federation__fuse_clients=2)
    with pytest.raises(ConfigError, match="fuse_clients"):
        tiny_config(tmp_path, federation__fuse_clients=0)
