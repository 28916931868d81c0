"""LoRA: low-rank updates of chosen linear layers (by default attention query and value).

PEFT's `LoraConfig`; the A/B matrices and the classification head train and travel.
"""

from __future__ import annotations

from peft import LoraConfig, get_peft_model
from torch import nn

from fedlingua.methods.base import Method


class LoraMethod(Method):
    name = "lora"
    default_lr = 1e-3

    def wrap(self, classifier: nn.Module) -> nn.Module:
        peft_cfg = LoraConfig(
            task_type="SEQ_CLS",
            r=self.cfg.lora_r,
            lora_alpha=self.cfg.lora_alpha,
            lora_dropout=self.cfg.lora_dropout,
            target_modules=list(self.cfg.lora_target_modules),
        )
        return get_peft_model(classifier, peft_cfg)
