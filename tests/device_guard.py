"""The device guard the device tests share: a dispatch mode that fails any op mixing the
workbench's device with another, and the `on_device` fixture (cpu, meta, cuda when present).

Meta tensors hold no values, so on `meta` the guard answers the few reads a step makes
(`.item()`, copies out to the CPU) with zeros, and autocast contexts (torch knows no meta
autocast dtype) become no-ops.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

aten = torch.ops.aten
_COPIES = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default}

DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


class DeviceGuard(TorchDispatchMode):
    """Records every op that mixes `device` with another device."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.mixed: list[str] = []
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        self.ops += 1
        if func not in _COPIES:
            devices = {t.device for t in tensors if not (t.dim() == 0 and t.device.type == "cpu")}
            if len(devices) > 1:
                self.mixed.append(f"{func}: {sorted(map(str, devices))}")
        if self.device.type == "meta" and tensors and tensors[0].is_meta:
            if func is aten._local_scalar_dense.default:
                return False if tensors[0].dtype == torch.bool else 0.5
            if func is aten._to_copy.default and kwargs.get("device") == torch.device("cpu"):
                return torch.zeros(tensors[0].shape, dtype=kwargs.get("dtype") or tensors[0].dtype)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def on_device(monkeypatch, request):
    """The device under test; on `meta`, autocast contexts (which know no meta autocast
    dtype) become no-ops."""
    device = torch.device(request.param)
    if device.type == "meta":
        real = torch.autocast

        def autocast(device_type: str, *args, **kwargs):
            return (
                contextlib.nullcontext()
                if device_type == "meta"
                else real(device_type, *args, **kwargs)
            )

        monkeypatch.setattr(torch, "autocast", autocast)
    return device
