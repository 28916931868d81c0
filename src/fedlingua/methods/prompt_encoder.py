"""P-tuning: virtual token embeddings produced by a small MLP or LSTM (the paper's method).

PEFT's `PromptEncoderConfig` builds the prompt encoder; its output is prepended
to the input embeddings of the frozen encoder. The state that trains and
travels is the prompt encoder's own weights (its input embedding table and the
MLP/LSTM) plus the classification head -- not the encoder's computed output,
which is what `get_peft_model_state_dict` would return for prompt methods.
"""

from __future__ import annotations

from peft import PromptEncoderConfig, PromptEncoderReparameterizationType, get_peft_model
from torch import nn

from fedlingua.methods.base import Method


class PromptEncoderMethod(Method):
    name = "prompt-encoder"
    default_lr = 1e-2

    @property
    def virtual_tokens(self) -> int:  # type: ignore[override]
        return self.cfg.num_virtual_tokens

    def wrap(self, classifier: nn.Module) -> nn.Module:
        kind = {
            "mlp": PromptEncoderReparameterizationType.MLP,
            "lstm": PromptEncoderReparameterizationType.LSTM,
        }[self.cfg.reparameterization]
        peft_cfg = PromptEncoderConfig(
            task_type="SEQ_CLS",
            num_virtual_tokens=self.cfg.num_virtual_tokens,
            encoder_reparameterization_type=kind,
            encoder_hidden_size=self.cfg.encoder_hidden_size,
            token_dim=classifier.config.hidden_size,
        )
        classifier.skip_prefix_tokens = self.cfg.num_virtual_tokens
        return get_peft_model(classifier, peft_cfg)
