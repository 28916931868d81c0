"""fedlingua: multilingual federated parameter-efficient fine-tuning.

One frozen multilingual encoder, a small trainable part per client (a virtual
prompt encoder by default), example-weighted averaging on a server: the
multilingual federated prompt tuning paradigm, plus the paradigms it is
compared against (local monolingual, centralized, federated full / LoRA).
"""

__version__ = "0.1.0"
