"""Full fine-tuning: every parameter trains and travels.

Optionally the word-embedding table stays frozen: it is by far the largest
tensor of a multilingual encoder (82% of e5-small) and a client only ever
updates the rows of the tokens it has seen.
"""

from __future__ import annotations

from torch import nn

from fedlingua.methods.base import Method


class FullFineTuning(Method):
    name = "full"
    default_lr = 5e-5

    def wrap(self, classifier: nn.Module) -> nn.Module:
        for p in classifier.parameters():
            p.requires_grad_(True)
        if self.cfg.freeze_word_embeddings:
            classifier.get_input_embeddings().weight.requires_grad_(False)
        return classifier
