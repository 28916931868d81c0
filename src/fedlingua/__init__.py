"""fedlingua: multilingual federated parameter-efficient fine-tuning.

One frozen multilingual encoder, a small trainable part per client (a virtual
prompt encoder by default), example-weighted averaging on a server: the
multilingual federated prompt tuning paradigm, plus the paradigms it is
compared against (local monolingual, centralized, federated full / LoRA).

`fedlingua.load(run_dir or export_dir)` returns a classifier with `.predict(texts, lang=None)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedlingua.inference import Classifier

__version__ = "0.1.0"


def load(path, **kwargs) -> Classifier:
    """A trained run directory or a `fedlingua export` folder, ready to `.predict(texts)`.

    Imported on call: `import fedlingua` stays light (no torch, transformers or PEFT).
    Keywords: `which` ("final" or "best"), `backbone` (an already loaded backbone).
    """
    from fedlingua.inference import load as load_classifier

    return load_classifier(path, **kwargs)


__all__ = ["__version__", "load"]
