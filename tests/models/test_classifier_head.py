"""SequenceClassifier: mean pooling over real tokens only, fp32 head and loss, PEFT-compatible."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers.modeling_outputs import SequenceClassifierOutput

from fedlingua.models import SequenceClassifier, build_tiny_backbone

TEXTS = ["Habari za asubuhi", "Ọmọ náà ń ṣeré ní ọgbà ilé ìwé lónìí", "hi"]


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_backbone()


@pytest.fixture()
def model(tiny):
    torch.manual_seed(0)
    return SequenceClassifier(tiny.encoder, num_labels=3).eval()


@pytest.fixture()
def batch(tiny):
    return tiny.tokenizer(TEXTS, padding=True, return_tensors="pt")


def _manual_logits(model, batch, skip: int) -> torch.Tensor:
    with torch.no_grad():
        hidden = model.encoder(**batch).last_hidden_state
    rows = []
    for i, length in enumerate(batch["attention_mask"].sum(1).tolist()):
        rows.append(hidden[i, skip:length].mean(0))
    return model.classifier(torch.stack(rows))


@pytest.mark.parametrize("skip", [0, 2])
def test_pooling_covers_real_tokens_after_the_prefix(model, batch, skip):
    assert batch["attention_mask"].min() == 0  # the batch really has padding
    model.skip_prefix_tokens = skip
    with torch.no_grad():
        logits = model(**batch).logits
    torch.testing.assert_close(logits, _manual_logits(model, batch, skip))


def test_padding_does_not_change_a_text_result(model, tiny, batch):
    with torch.no_grad():
        padded = model(**batch).logits
        for i, text in enumerate(TEXTS):
            alone = model(**tiny.tokenizer([text], return_tensors="pt")).logits
            torch.testing.assert_close(padded[i : i + 1], alone, atol=1e-5, rtol=1e-4)


def test_loss_is_cross_entropy(model, batch):
    labels = torch.tensor([0, 2, 1])
    out = model(**batch, labels=labels)
    assert isinstance(out, SequenceClassifierOutput)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    assert model(**batch).loss is None


def test_extra_keywords_are_ignored(model, batch):
    out = model(
        **batch,
        output_attentions=True,
        output_hidden_states=True,
        return_dict=False,
        task_ids=None,
        something_new=1,
    )
    assert out.logits.shape == (3, 3)


def test_pooling_head_and_loss_stay_fp32_under_bf16_autocast(model, batch):
    with torch.no_grad():
        hidden = model.encoder(**batch).last_hidden_state.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch, labels=torch.tensor([0, 1, 2]))
        pooled = model.pool(hidden, batch["attention_mask"])
    assert out.logits.dtype == torch.float32 and out.loss.dtype == torch.float32
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden.float() * mask).sum(1) / mask.sum(1)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)


def test_exposes_what_peft_reads(model, tiny):
    assert model.config is tiny.encoder.config
    assert model.get_input_embeddings() is tiny.encoder.get_input_embeddings()
    assert dict(model.named_children())["classifier"] is model.classifier
    assert model.num_labels == 3 and model.skip_prefix_tokens == 0


def test_peft_p_tuning_trains_prompt_encoder_and_classifier_only(tiny, batch):
    from peft import PromptEncoderConfig, TaskType, get_peft_model

    base = SequenceClassifier(tiny.encoder, num_labels=3)
    config = PromptEncoderConfig(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=4, encoder_hidden_size=16
    )
    peft_model = get_peft_model(base, config)
    base.skip_prefix_tokens = config.num_virtual_tokens
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("classifier" in n for n in trainable)
    assert any("prompt_encoder" in n for n in trainable)
    assert not any(n.startswith("base_model.encoder.") for n in trainable)
    out = peft_model(**batch, labels=torch.tensor([0, 1, 2]))
    assert out.logits.shape == (3, 3)
    out.loss.backward()
    assert all(
        p.grad is not None for n, p in peft_model.named_parameters() if "prompt_encoder" in n
    )
