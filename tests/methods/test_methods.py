"""Methods declare exactly which tensors train and travel; the frozen backbone never does."""

from __future__ import annotations

import pytest
import torch

from fedlingua.config import RunConfig
from fedlingua.training import build_workbench


def _bench(tiny_backbone, method: str, **method_kw):
    cfg = RunConfig()
    cfg.method.name = method
    cfg.method.num_virtual_tokens = 4
    cfg.method.encoder_hidden_size = 16
    for k, v in method_kw.items():
        setattr(cfg.method, k, v)
    return build_workbench(tiny_backbone, 4, cfg.validate())


def test_prompt_encoder_exchanges_encoder_weights_not_its_output(tiny_backbone):
    bench = _bench(tiny_backbone, "prompt-encoder")
    names = bench.names
    assert any("prompt_encoder" in n and "mlp_head" in n for n in names), names
    assert any("prompt_encoder" in n and "embedding" in n for n in names), names
    assert any("classifier" in n for n in names), names
    assert not any(n.startswith("base_model.encoder.") for n in names)
    hidden = tiny_backbone.encoder.config.hidden_size
    mlp = [bench.get_state()[n] for n in names if "mlp_head" in n and n.endswith("weight")]
    assert {tuple(t.shape) for t in mlp} == {(16, hidden), (16, 16), (hidden, 16)}


def test_lstm_prompt_encoder_trains_its_lstm(tiny_backbone):
    bench = _bench(tiny_backbone, "prompt-encoder", reparameterization="lstm")
    assert any("lstm_head" in n for n in bench.names)


@pytest.mark.parametrize("method", ["prompt-encoder", "soft-prompt", "lora", "full"])
def test_state_round_trips_exactly_and_backbone_is_untouched(tiny_backbone, method):
    before = {k: v.clone() for k, v in tiny_backbone.encoder.state_dict().items()}
    bench = _bench(tiny_backbone, method)
    state = bench.get_state()
    assert set(state) == set(bench.names)
    noisy = {k: v + torch.randn_like(v) for k, v in state.items()}
    bench.set_state(noisy)
    again = bench.get_state()
    assert all(torch.equal(again[k], noisy[k]) for k in state)
    # the caller's backbone stays pristine (the workbench wraps a private copy)
    after = tiny_backbone.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_trainable_counts_order_methods_as_expected(tiny_backbone):
    counts = {m: _bench(tiny_backbone, m).params for m in ("soft-prompt", "lora", "full")}
    full_all = _bench(tiny_backbone, "full", freeze_word_embeddings=False).params
    assert counts["soft-prompt"].trainable < counts["full"].trainable < full_all.trainable
    assert counts["lora"].trainable < counts["full"].trainable
    assert full_all.trainable == full_all.total


def test_set_state_rejects_wrong_names_and_shapes(tiny_backbone):
    bench = _bench(tiny_backbone, "lora")
    state = bench.get_state()
    name = next(iter(state))
    with pytest.raises(KeyError, match="mismatch"):
        bench.set_state({k: v for k, v in state.items() if k != name})
    bad = dict(state)
    bad[name] = torch.zeros(3, 3, 3)
    with pytest.raises(ValueError, match="shape"):
        bench.set_state(bad)
