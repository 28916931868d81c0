"""Device plumbing: a training step keeps every tensor on the workbench's device.

The check is a dispatch mode that sees every aten op of the step, forward, backward and
optimizer alike: an op whose tensor arguments sit on two devices (CPU scalars aside, which
torch mixes legally; explicit copies aside, which are the boundary) fails the test. On a
CPU-only machine the step runs on the `meta` device, where a forgotten `.to(device)` is
caught because the forgotten tensor stays on the CPU. Meta tensors hold no values, so the
guard answers the few reads a step makes (`.item()`, copies out to the CPU) with zeros.
"""

from __future__ import annotations

import contextlib

import device_guard
import pytest
import torch
from device_guard import DEVICES, DeviceGuard

from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import EncodedSplit
from fedlingua.runtime import device_name, resolve_device, resolve_precision
from fedlingua.training import build_workbench, eval_logits, local_update

on_device = device_guard.on_device  # the fixture, shared


def _data(n: int = 12) -> EncodedSplit:
    ids = [[0] + [5 + (i * 7 + j) % 50 for j in range(3 + i % 5)] + [2] for i in range(n)]
    return EncodedSplit(ids, [i % 3 for i in range(n)], ["fr"] * n)


def _cfg(method: str) -> RunConfig:
    cfg = RunConfig()
    cfg.method.name = method
    cfg.method.num_virtual_tokens = 4
    cfg.method.encoder_hidden_size = 16
    cfg.model.precision = "fp32"
    return cfg.validate()


@pytest.mark.parametrize("method", ["prompt-encoder", "soft-prompt", "lora", "full"])
@pytest.mark.parametrize("on_device", DEVICES, indirect=True)
def test_a_client_update_keeps_every_tensor_on_the_device(tiny_backbone, on_device, method):
    device = on_device
    bench = build_workbench(tiny_backbone, 3, _cfg(method), device=device)
    params = dict(bench.model.named_parameters())
    start = {n: torch.full(params[n].shape, 0.01) for n in bench.names}  # a CPU state arrives
    guard = DeviceGuard(device)
    with guard:
        result = local_update(
            bench,
            start,
            _data(),
            epochs=1,
            batch_size=4,
            lr=1e-3,
            seed=0,
            proximal_mu=0.1,
            logit_adjustment=1.0,
        )
        logits = [x for _, x, _ in eval_logits(bench, None, _data(5), batch_size=4)]
    assert guard.ops > 100
    assert not guard.mixed, "ops mixing devices:\n" + "\n".join(guard.mixed[:10])
    assert result.steps == 3
    # what leaves the workbench (to be serialized, averaged, saved) is on the CPU
    assert {t.device.type for t in result.state.values()} == {"cpu"}
    assert {t.device.type for t in logits} == {"cpu"}
    assert {p.device.type for p in params.values()} == {device.type}


@pytest.mark.parametrize("on_device", ["meta"], indirect=True)
def test_the_guard_catches_a_tensor_left_on_the_cpu(tiny_backbone, on_device):
    bench = build_workbench(tiny_backbone, 3, _cfg("soft-prompt"), device="meta")
    guard = DeviceGuard(torch.device("meta"))
    ids = torch.tensor([[0, 7, 8, 2]])
    with guard, contextlib.suppress(RuntimeError):  # the op may refuse too, after the guard saw it
        bench.model(input_ids=ids, attention_mask=torch.ones_like(ids))  # batch not moved
    assert guard.mixed


def test_devices_resolve_and_cpu_precisions_are_unchanged():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device("cuda:0")
    assert resolve_precision("fp32", "cpu") == resolve_precision("fp32")
    assert device_name("cpu")


def test_cuda_precisions_map_the_cpu_mode_to_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("fp32-onednn", "cuda") == "fp32"
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("bf16", "cuda:1") == "bf16"
    assert resolve_precision("fp32", "cuda") == "fp32"


@pytest.mark.parametrize("value", ["cpu", "cuda", "cuda:3", "auto"])
def test_config_takes_device_names(value):
    cfg = RunConfig()
    cfg.model.device = value
    cfg.validate()


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "CPU", ""])
def test_config_rejects_other_devices(value):
    cfg = RunConfig()
    cfg.model.device = value
    with pytest.raises(ConfigError, match="model.device"):
        cfg.validate()


def test_a_supernode_takes_its_device_from_the_node_config():
    from flwr.app import Context, RecordDict

    from fedlingua.flower_app.client_app import node_run_config

    def context(node_config: dict) -> Context:
        return Context(0, 1, node_config, RecordDict(), {"overrides": "model.name='tiny'"})

    assert node_run_config(context({"device": "cpu"})).model.device == "cpu"
    assert node_run_config(context({})).model.device == "auto"
    with pytest.raises(ConfigError, match="model.device"):
        node_run_config(context({"device": "tpu"}))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_steps_and_evaluation_never_take_cudnn_attention(precision):
    """cuDNN's attention plans each new input shape anew (slow with padded batches): CUDA
    training steps and evaluation run flash or memory-efficient attention instead. The
    contexts only set backend flags, so this holds on a CPU-only machine too."""
    from fedlingua.training import Workbench

    bench = Workbench(torch.nn.Identity(), None, [], 0, precision, device=torch.device("cuda"))
    for context in (bench.matmuls, bench.eval_attention):
        step = context()
        assert torch.backends.cuda.cudnn_sdp_enabled()  # nothing changes before `with`
        with step:
            assert not torch.backends.cuda.cudnn_sdp_enabled()
            assert torch.backends.cuda.flash_sdp_enabled()
            assert torch.backends.cuda.mem_efficient_sdp_enabled()
            if context == bench.matmuls:
                assert torch.backends.cuda.matmul.allow_tf32 == (precision == "bf16")
    assert torch.backends.cuda.cudnn_sdp_enabled()  # restored
