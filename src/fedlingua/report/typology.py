"""Typological distances between languages, read offline from the URIEL+ database.

Which database, and why. Two PyPI packages ship URIEL (Littell et al., 2017) inside their
wheels: `lang2vec` 1.1.2 (2019) and `urielplus` 1.3.2 (URIEL+, Khan et al., 2025). Both
install cleanly next to fedlingua's pinned stack, but lang2vec cannot be imported: it needs
`pkg_resources`, which setuptools removed in release 81. So fedlingua uses urielplus (the
optional extra `analysis`). Its wheel holds the URIEL feature files themselves
(`urielplus/database/original_uriel/*.npz`: plain numeric arrays, no pickles); nothing is
downloaded, ever.

How the distances are computed. Exactly as URIEL+'s `new_distance` with its defaults
(angular distance, union aggregation over sources, no imputation): per pair of languages,
over the features both languages have an observed value for, the angle between the two
vectors divided by pi (0 = same direction, 1 = opposite), rounded to 4 decimals. The tests
pin the values to those the library's own function returns. fedlingua reads the arrays
directly instead of instantiating `URIELPlus`, because the latter copies its files into
its own installed package on first use and configures the root logger at import; and a
vectorised read is much faster than its per-feature Python loops (a 30-language genetic
matrix took it a minute).

Because nothing is imputed, a distance can rest on very few shared features (Setswana has
one observed syntactic feature, so its syntactic distance to English is 0.0 from that
single feature). Every distance therefore carries the number of features it was computed
from; the analysis treats one from fewer than `MIN_SHARED` as too thin to use.

Kinds: syntactic (WALS/SSWL/Ethnologue `S_` features), phonological (`P_`), inventory
(`INV_`, PHOIBLE), featural (all typological features), genetic (Glottolog family-tree
membership) and geographic (closeness to 299 points on the globe).
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

DATABASE = "urielplus"
EXTRA = "analysis"
KINDS = ("syntactic", "genetic", "geographic", "phonological", "inventory", "featural")
MEAN_OF = ("syntactic", "genetic", "geographic")  # the paper's distance: their mean
MIN_SHARED = 20  # a distance from fewer shared features is reported but not used
ENGLISH = "eng"

# kind -> (file, feature-name prefix; "" = every feature of the file)
_SOURCES = {
    "syntactic": ("features.npz", "S_"),
    "phonological": ("features.npz", "P_"),
    "inventory": ("features.npz", "INV_"),
    "featural": ("features.npz", ""),
    "genetic": ("family_features.npz", ""),
    "geographic": ("geocoord_features.npz", ""),
}

# ISO 639-1 -> ISO 639-3, the standard correspondence (a two-letter code names the
# macrolanguage where there is one: sw -> swa, ar -> ara, zh -> zho). It covers every
# two-letter code of XNLI, XGLUE-NC, the CLDR locales and MasakhaNEWS's neighbours;
# an unlisted code is reported as missing, never guessed.
ISO639_1 = {
    "af": "afr", "am": "amh", "ar": "ara", "az": "aze", "be": "bel", "bg": "bul",
    "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu",
    "el": "ell", "en": "eng", "es": "spa", "et": "est", "eu": "eus", "fa": "fas",
    "fi": "fin", "fr": "fra", "ga": "gle", "gl": "glg", "gu": "guj", "ha": "hau",
    "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind",
    "ig": "ibo", "is": "isl", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat",
    "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "ky": "kir", "lg": "lug",
    "ln": "lin", "lo": "lao", "lt": "lit", "lv": "lav", "mg": "mlg", "mk": "mkd",
    "ml": "mal", "mn": "mon", "mr": "mar", "ms": "msa", "my": "mya", "ne": "nep",
    "nl": "nld", "no": "nor", "ny": "nya", "om": "orm", "pa": "pan", "pl": "pol",
    "ps": "pus", "pt": "por", "qu": "que", "rn": "run", "ro": "ron", "ru": "rus",
    "rw": "kin", "si": "sin", "sk": "slk", "sl": "slv", "sn": "sna", "so": "som",
    "sq": "sqi", "sr": "srp", "st": "sot", "sv": "swe", "sw": "swa", "ta": "tam",
    "te": "tel", "tg": "tgk", "th": "tha", "ti": "tir", "tl": "tgl", "tn": "tsn",
    "tr": "tur", "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie", "wo": "wol",
    "xh": "xho", "yo": "yor", "zh": "zho", "zu": "zul",
}  # fmt: skip


class DistanceAnalysisError(ValueError):
    """The analysis cannot run: bad input, or its database is not installed."""


def iso639_3(code: str) -> str | None:
    """The ISO 639-3 code of a dataset's language code, or None when it has none.

    FLORES/SIB-200 (`hau_Latn`), ISO 639-3 (`hau`), ISO 639-1 (`ha`) and CLDR locales
    (`ha`, `sr_Latn`, `pt-BR`): the base before `_`/`-` is taken, two letters are mapped
    through ISO639_1, three lowercase letters are already ISO 639-3.
    """
    base = re.split(r"[_-]", code.strip(), maxsplit=1)[0].lower()
    if len(base) == 2:
        return ISO639_1.get(base)
    return base if re.fullmatch(r"[a-z]{3}", base) else None


def available() -> bool:
    return importlib.util.find_spec(DATABASE) is not None


def check_installed() -> None:
    """Raise DistanceAnalysisError naming the extra to install when URIEL+ is absent."""
    _folder()


def _folder() -> Path:
    spec = importlib.util.find_spec(DATABASE)  # located, not imported: see the docstring
    if spec is None or not spec.submodule_search_locations:
        raise DistanceAnalysisError(
            f"language distances need the URIEL+ database ({DATABASE}): install fedlingua's "
            f"optional extra with `pip install -e '.[{EXTRA}]'` (or `pip install {DATABASE}`)"
        )
    return Path(spec.submodule_search_locations[0]) / "database" / "original_uriel"


@dataclass(frozen=True)
class _Table:
    """One kind's features: per language, the value (union over sources) and whether known."""

    index: dict[str, int]
    values: np.ndarray  # [languages, features] float32 (0 where unknown)
    known: np.ndarray  # [languages, features] bool


@cache
def _table(kind: str) -> _Table:
    file, prefix = _SOURCES[kind]
    path = _folder() / file
    with np.load(path, allow_pickle=False) as z:
        feats, langs, data = z["feats"], z["langs"], z["data"]
    data = data[:, np.array([str(f).startswith(prefix) for f in feats]), :]
    observed = (data != -1.0) & np.isfinite(data)
    known = observed.any(axis=-1)
    if data.shape[-1] == 1:
        values = data[..., 0]
    elif kind == "geographic":  # URIEL+ averages geographic sources, takes the max otherwise
        values = np.where(observed, data, 0.0).sum(axis=-1) / np.maximum(observed.sum(-1), 1)
    else:
        values = np.where(observed, data, -np.inf).max(axis=-1)
    values = np.where(known, values, 0.0).astype(np.float32)
    return _Table({str(x): i for i, x in enumerate(langs)}, values, known)


def has_language(code: str) -> bool:
    return code in _table("genetic").index


def _angular(u: np.ndarray, v: np.ndarray) -> float:
    # URIEL+'s quirk, kept so the numbers match its own: an all-zero vector becomes 1e-10s
    u, v = u.astype(np.float64), v.astype(np.float64)
    if not np.linalg.norm(u):
        u = np.full(len(u), 1e-10)
    if not np.linalg.norm(v):
        v = np.full(len(v), 1e-10)
    cos = float(np.dot(u / np.linalg.norm(u), v / np.linalg.norm(v)))
    return round(2 * math.acos(min(1.0, max(-1.0, cos))) / math.pi, 4)


@dataclass(frozen=True)
class Distance:
    value: float | None  # None: no feature observed for both languages
    shared: int  # features the value was computed from

    @property
    def usable(self) -> bool:
        return self.value is not None and self.shared >= MIN_SHARED


def distance(kind: str, a: str, b: str) -> Distance:
    """URIEL+ distance of one kind between two ISO 639-3 codes the database knows."""
    t = _table(kind)
    i, j = t.index[a], t.index[b]
    shared = t.known[i] & t.known[j]
    n = int(shared.sum())
    if n == 0:
        return Distance(None, 0)
    if a == b:
        return Distance(0.0, n)
    return Distance(_angular(t.values[i, shared], t.values[j, shared]), n)
