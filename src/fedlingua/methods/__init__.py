"""Fine-tuning methods: each says which tensors train (and therefore travel).

The registry maps the names used in configs to method classes; adding a method
is one file and one line here.
"""

from __future__ import annotations

from fedlingua.config import MethodConfig
from fedlingua.methods.base import (
    Method,
    ParameterCount,
    count_parameters,
    get_trainable,
    set_trainable,
    trainable_names,
)
from fedlingua.methods.full import FullFineTuning
from fedlingua.methods.lora import LoraMethod
from fedlingua.methods.prompt_encoder import PromptEncoderMethod
from fedlingua.methods.soft_prompt import SoftPromptMethod

REGISTRY: dict[str, type[Method]] = {
    cls.name: cls for cls in (PromptEncoderMethod, SoftPromptMethod, LoraMethod, FullFineTuning)
}


def make_method(cfg: MethodConfig) -> Method:
    try:
        return REGISTRY[cfg.name](cfg)
    except KeyError:
        raise ValueError(f"unknown method {cfg.name!r}; choose from {sorted(REGISTRY)}") from None


__all__ = [
    "REGISTRY",
    "Method",
    "ParameterCount",
    "count_parameters",
    "get_trainable",
    "make_method",
    "set_trainable",
    "trainable_names",
]
