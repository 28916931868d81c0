"""Fused client updates equal the same clients run one after another (dropout off).

Tolerance: the fused path computes the same functions in another order only. Rows are
right-padded to the widest batch of the step (masked keys get exactly zero attention
weight, but softmax and pooling sums run over more terms), and the frozen encoder's
products run on a taller matrix (the GEMM may block its reductions differently). Each is
a reassociation of fp32 sums, about 1e-7 relative per operation, and a few Adam steps
pass such relative differences of the gradients straight into the step (m/sqrt(v) is
scale-free). Measured on these cases (tiny backbone, 2-6 steps per client): the final
tensors differ from the sequential ones by at most 2.4e-7 absolute (AdamW) and 7e-9
(SGD), while every client's tensors move by 1.5e-2 or more. The test allows 2e-6
absolute + 1e-5 relative: ten times the measured reassociation noise, and four orders
of magnitude below a client's own movement, so a wrong row, a missing step, a shared
optimizer or a client that kept training after its data ran out fails it.
"""

from __future__ import annotations

import device_guard
import pytest
import torch
from device_guard import DEVICES, DeviceGuard

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit
from fedlingua.fused import can_fuse, fused_local_update
from fedlingua.training import build_workbench, local_update

ATOL, RTOL = 2e-6, 1e-5

on_device = device_guard.on_device  # the fixture, shared


def _data(n: int, offset: int) -> EncodedSplit:
    ids = [
        [0] + [5 + (i * 7 + j * 3 + offset) % 60 for j in range(2 + (i + offset) % 9)] + [2]
        for i in range(n)
    ]
    return EncodedSplit(ids, [(i + offset) % 3 for i in range(n)], ["fr"] * n)


def _bench(tiny_backbone, method: str, device: str | None = None):
    cfg = RunConfig()
    cfg.method.name = method
    cfg.method.num_virtual_tokens = 4
    cfg.method.encoder_hidden_size = 16
    cfg.model.dropout = 0.0
    cfg.model.precision = "fp32"
    bench = build_workbench(tiny_backbone, 3, cfg.validate(), device=device)
    for module in bench.model.modules():  # the backbone's own dropout too (hidden, attention)
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return bench


def _starts(bench, k: int) -> list[dict[str, torch.Tensor]]:
    """k different starting states (clients of different federations may differ)."""
    base = bench.get_state()
    g = torch.Generator().manual_seed(1)
    return [
        {n: t + 0.01 * i * torch.randn(t.shape, generator=g) for n, t in base.items()}
        for i in range(k)
    ]


HYPER = {
    "adamw": dict(epochs=2, batch_size=4, lr=1e-2, weight_decay=0.01),
    "sgd-prox-adjusted": dict(
        epochs=1,
        batch_size=3,
        lr=5e-2,
        optimizer="sgd",
        momentum=0.9,
        proximal_mu=0.1,
        logit_adjustment=1.0,
        max_grad_norm=0.5,
    ),
}


@pytest.mark.parametrize("hyper", sorted(HYPER))
@pytest.mark.parametrize("method", ["prompt-encoder", "soft-prompt"])
def test_fused_clients_equal_sequential_clients(tiny_backbone, method, hyper):
    bench = _bench(tiny_backbone, method)
    assert can_fuse(bench)
    datasets = [_data(13, 0), _data(5, 1), _data(22, 2)]  # unequal: 4, 2 and 6 batches of 4
    starts, seeds = _starts(bench, 3), [11, 12, 13]
    kw = HYPER[hyper]
    sequential = [
        local_update(bench, s, d, seed=seed, **kw)
        for s, d, seed in zip(starts, datasets, seeds, strict=True)
    ]
    steps: list[int] = []
    fused = fused_local_update(
        bench, starts, datasets, seeds, on_step=lambda: steps.append(1), **kw
    )
    assert len(steps) == sum(r.steps for r in sequential)
    for seq, fus, start in zip(sequential, fused, starts, strict=True):
        assert (fus.steps, fus.num_examples) == (seq.steps, seq.num_examples)
        assert fus.loss_first == pytest.approx(seq.loss_first, rel=RTOL, abs=ATOL)
        assert fus.loss_last == pytest.approx(seq.loss_last, rel=RTOL, abs=ATOL)
        moved = max(float((v - start[n]).abs().max()) for n, v in seq.state.items())
        assert moved > 1000 * ATOL, "the client did not train: the comparison would be empty"
        for name, value in seq.state.items():
            assert fus.state[name].device.type == "cpu"
            torch.testing.assert_close(fus.state[name], value, atol=ATOL, rtol=RTOL)


def test_one_fused_client_is_the_sequential_update(tiny_backbone):
    bench = _bench(tiny_backbone, "prompt-encoder")
    start, data = _starts(bench, 1)[0], _data(9, 3)
    seq = local_update(bench, start, data, epochs=1, batch_size=4, lr=1e-2, seed=5)
    (fus,) = fused_local_update(bench, [start], [data], [5], epochs=1, batch_size=4, lr=1e-2)
    for name, value in seq.state.items():
        torch.testing.assert_close(fus.state[name], value, atol=ATOL, rtol=RTOL)


def test_methods_without_a_prompt_cannot_fuse(tiny_backbone):
    bench = _bench(tiny_backbone, "lora")
    assert not can_fuse(bench)
    with pytest.raises(ValueError, match="cannot fuse"):
        fused_local_update(
            bench, [bench.get_state()], [_data(4, 0)], [0], epochs=1, batch_size=4, lr=1e-3
        )


@pytest.mark.parametrize("on_device", [d for d in DEVICES if d != "cpu"], indirect=True)
def test_a_fused_update_keeps_every_tensor_on_the_device(tiny_backbone, on_device):
    bench = _bench(tiny_backbone, "prompt-encoder", device=on_device)
    params = dict(bench.model.named_parameters())
    starts = [{n: torch.full(params[n].shape, 0.01 * i) for n in bench.names} for i in (1, 2)]
    guard = DeviceGuard(on_device)
    with guard:
        results = fused_local_update(
            bench,
            starts,
            [_data(6, 0), _data(3, 1)],
            [0, 1],
            epochs=1,
            batch_size=4,
            lr=1e-3,
            proximal_mu=0.1,
            logit_adjustment=1.0,
        )
    assert not guard.mixed, "ops mixing devices:\n" + "\n".join(guard.mixed[:10])
    assert {t.device.type for r in results for t in r.state.values()} == {"cpu"}
