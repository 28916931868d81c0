"""What every fine-tuning method shares: which tensors train, how they are read and written.

A method wraps a `SequenceClassifier` (frozen encoder + linear head) and
decides which parameters require gradients. Those trainable tensors are the
whole client state: they are what is copied into the shared model for a
client, sent to the server, averaged and saved. The rest of the model (the
frozen backbone) is loaded once per process and never travels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from fedlingua.config import MethodConfig


@dataclass
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / max(self.total, 1)


class Method:
    """Base class; subclasses implement `wrap` and set `name` and `default_lr`."""

    name: ClassVar[str]
    default_lr: ClassVar[float]
    # Prompt methods prepend virtual tokens: they use positions and are skipped by pooling.
    virtual_tokens: int = 0

    def __init__(self, cfg: MethodConfig) -> None:
        self.cfg = cfg

    def wrap(self, classifier: nn.Module) -> nn.Module:  # pragma: no cover - interface
        raise NotImplementedError


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that require gradients, in a stable order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def get_trainable(model: nn.Module, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Detached fp32 CPU copies of the trainable parameters (the state that travels)."""
    params = dict(model.named_parameters())
    names = names if names is not None else trainable_names(model)
    return {n: params[n].detach().to("cpu", torch.float32).clone() for n in names}


def set_trainable(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` into the model's trainable parameters; names must match exactly."""
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    got = set(state)
    if got != expected:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise KeyError(f"trainable state mismatch: missing {missing[:5]}, unexpected {extra[:5]}")
    with torch.no_grad():
        for name, value in state.items():
            p = params[name]
            if p.shape != value.shape:
                raise ValueError(f"{name}: shape {tuple(value.shape)} != {tuple(p.shape)}")
            p.copy_(value.to(p.dtype))


def count_parameters(model: nn.Module) -> ParameterCount:
    """Trainable and total parameters, counting shared tensors once."""
    seen: set[int] = set()
    total = trainable = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return ParameterCount(trainable=trainable, total=total)
