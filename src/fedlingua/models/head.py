"""The classification head: mean pooling over real tokens, dropout, one linear layer.

Why mean pooling and not BERT's CLS pooler: multilingual-e5 was trained to be used
with mean pooling over all tokens; the offline checkpoint has no pooler weights at all,
so a `BertForSequenceClassification` head would put a randomly initialised pooler on
top, and PEFT freezes it. Measured on CLDR names in 6 locales with P-tuning (see
shared/notes/offline-model.md): CLS pooler + linear reached about 0.41 mean accuracy
after 3 epochs, mean pooling + linear (text prefixed "query: ") 0.69 and still rising.
(Those two runs differ in head and prefix together; both follow how e5 was trained.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class SequenceClassifier(nn.Module):
    """Frozen-encoder classifier that PEFT's sequence-classification wrapper can drive.

    PEFT relies on three names here: `config` (it reads the encoder's config),
    `classifier` (any module whose name contains "classifier" is made trainable and
    exchanged with the server) and the usual forward keywords. Prompt methods prepend
    virtual tokens to the input; set `skip_prefix_tokens` to their number so that the
    pooled vector covers only the real text, as the encoder was trained.
    """

    def __init__(self, encoder: PreTrainedModel, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.num_labels = num_labels
        self.skip_prefix_tokens = 0
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        std = getattr(encoder.config, "initializer_range", 0.02)
        nn.init.normal_(self.classifier.weight, std=std)
        nn.init.zeros_(self.classifier.bias)

    @property
    def device(self) -> torch.device:
        """PEFT reads `model.device` (a transformers convention) when it wraps the model."""
        return next(self.parameters()).device

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Mean of the hidden states of real tokens (mask 1), skipping the prefix; in fp32.

        Elementwise product and sum, not a matmul: autocast leaves those in fp32.
        """
        batch, length = hidden.shape[:2]
        if attention_mask is None:
            mask = hidden.new_ones(batch, length, dtype=torch.float32)
        else:
            if attention_mask.shape != (batch, length):
                raise ValueError(
                    f"attention_mask {tuple(attention_mask.shape)} does not match the encoder "
                    f"output {(batch, length)}"
                )
            mask = attention_mask.to(torch.float32)
        if self.skip_prefix_tokens:
            mask = mask.clone()
            mask[:, : self.skip_prefix_tokens] = 0.0
        summed = (hidden.float() * mask.unsqueeze(-1)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1.0)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,  # output_attentions, output_hidden_states, return_dict...: not used
    ) -> SequenceClassifierOutput:
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            token_type_ids=token_type_ids,
            return_dict=True,
        )
        hidden = out.last_hidden_state
        with torch.autocast(device_type=hidden.device.type, enabled=False):  # head, loss in fp32
            pooled = self.pool(hidden, attention_mask)
            weight_dtype = self.classifier.weight.dtype
            logits = self.classifier(self.dropout(pooled.to(weight_dtype))).float()
            loss = None
            if labels is not None:
                loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1).long())
        return SequenceClassifierOutput(loss=loss, logits=logits)
