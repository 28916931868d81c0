"""Data: sources, validation, clients and batches for multilingual text classification.

Sources: the built-in CLDR names ("cldr", offline default), four local presets
(masakhanews, sib200, xnli, xglue_nc), the Hugging Face hub ("hf:..."), and folders of
`<lang>/<split>.{tsv,csv,jsonl}`. All produce a `MultilingualDataset`; `make_clients`
turns it into federated clients; `encode` + `iterate_batches` feed a model.
"""

from .batching import EncodedSplit, encode, iterate_batches, text_budget
from .cldr import CLDR_LABELS, DEFAULT_CLDR_LOCALES, MASAKHANEWS_TO_CLDR
from .clients import ClientData, make_clients
from .loading import default_data_root, load_dataset
from .presets import PRESETS
from .schema import SPLITS, DataError, DataUnavailableError, Example, MultilingualDataset
from .summary import format_summary, summarize

__all__ = [
    "CLDR_LABELS",
    "DEFAULT_CLDR_LOCALES",
    "MASAKHANEWS_TO_CLDR",
    "PRESETS",
    "SPLITS",
    "ClientData",
    "DataError",
    "DataUnavailableError",
    "EncodedSplit",
    "Example",
    "MultilingualDataset",
    "default_data_root",
    "encode",
    "format_summary",
    "iterate_batches",
    "load_dataset",
    "make_clients",
    "summarize",
    "text_budget",
]
