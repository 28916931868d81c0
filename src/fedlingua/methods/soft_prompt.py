"""Soft prompt tuning: the virtual token embeddings themselves are the trainable parameters.

PEFT's `PromptTuningConfig` with random initialisation; the embedding table of
the virtual tokens and the classification head train and travel.
"""

from __future__ import annotations

from peft import PromptTuningConfig, PromptTuningInit, get_peft_model
from torch import nn

from fedlingua.methods.base import Method


class SoftPromptMethod(Method):
    name = "soft-prompt"
    default_lr = 3e-2

    @property
    def virtual_tokens(self) -> int:  # type: ignore[override]
        return self.cfg.num_virtual_tokens

    def wrap(self, classifier: nn.Module) -> nn.Module:
        peft_cfg = PromptTuningConfig(
            task_type="SEQ_CLS",
            num_virtual_tokens=self.cfg.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.RANDOM,
            token_dim=classifier.config.hidden_size,
        )
        classifier.skip_prefix_tokens = self.cfg.num_virtual_tokens
        return get_peft_model(classifier, peft_cfg)
