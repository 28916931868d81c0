"""Built-in offline dataset: CLDR display names from `babel`, labelled by what they name.

For a locale, every localized name of a language, territory, currency or script is one
example whose label is its kind, e.g. fr "allemand" -> language, "Allemagne" -> territory.
No files and no network: the default source for demos and tests. Locales differ a lot in
coverage (about 1,400 names for fr, about 330 for lg/sn/rn), which gives a natural
high/low-resource spread.
"""

from __future__ import annotations

import babel
from babel import Locale, localedata
from babel.core import UnknownLocaleError

from .sampling import rng_for, stratified_split
from .schema import DataError, MultilingualDataset, RawRow, assemble

CLDR_LABELS: tuple[str, ...] = ("language", "territory", "currency", "script")
_KIND_ATTR = {
    "language": "languages",
    "territory": "territories",
    "currency": "currencies",
    "script": "scripts",
}
CLDR_FRACTIONS = (0.6, 0.2, 0.2)  # train / dev / test per locale, stratified by kind

# Five larger locales (about 950-1,400 names) and three small ones (about 325), African-heavy.
DEFAULT_CLDR_LOCALES: tuple[str, ...] = ("fr", "sw", "ha", "am", "lg", "sn", "rn", "yo")

# MasakhaNEWS language codes -> babel locale ids (all 16 exist in babel).
MASAKHANEWS_TO_CLDR: dict[str, str] = {
    "amh": "am",
    "eng": "en",
    "fra": "fr",
    "hau": "ha",
    "ibo": "ig",
    "lin": "ln",
    "lug": "lg",
    "orm": "om",
    "pcm": "pcm",
    "run": "rn",
    "sna": "sn",
    "som": "so",
    "swa": "sw",
    "tir": "ti",
    "xho": "xh",
    "yor": "yo",
}


def cldr_names(locale: str) -> list[tuple[str, str]]:
    """(name, kind) pairs for one locale: stripped, deduplicated, sorted.

    A name that is used for two kinds within the locale (fr "arabe": language and
    script) is dropped: its label would be ambiguous.
    """
    if not localedata.exists(locale):
        try:
            known = f"; babel knows it as {Locale.parse(locale).language!r}"
        except (UnknownLocaleError, ValueError):
            known = ""
        raise DataError(
            f"unknown CLDR locale {locale!r}{known}",
            hint="use babel locale ids such as 'fr', 'sw', 'ha' (see MASAKHANEWS_TO_CLDR "
            "for MasakhaNEWS codes)",
        )
    loc = Locale.parse(locale)
    kinds: dict[str, set[str]] = {}
    for kind, attr in _KIND_ATTR.items():
        for value in getattr(loc, attr).values():
            name = (value or "").strip()
            if name:
                kinds.setdefault(name, set()).add(kind)
    return sorted((name, next(iter(k))) for name, k in kinds.items() if len(k) == 1)


def load_cldr(languages: list[str] | None = None, *, seed: int = 0) -> MultilingualDataset:
    """CLDR names for `languages` (default DEFAULT_CLDR_LOCALES), split 60/20/20 per locale.

    Each locale's split depends only on (seed, locale), not on the other locales chosen.
    """
    locales = list(DEFAULT_CLDR_LOCALES if languages is None else languages)
    if len(set(locales)) != len(locales):
        raise DataError(f"languages lists a locale twice: {locales}")
    raw: dict[str, dict[str, list[RawRow]]] = {}
    for locale in locales:
        names = cldr_names(locale)
        parts = stratified_split(
            [k for _, k in names], CLDR_FRACTIONS, rng_for("cldr", seed, locale)
        )
        raw[locale] = {
            split: [(names[i][0], None, names[i][1]) for i in idx]
            for split, idx in zip(("train", "dev", "test"), parts, strict=True)
        }
    lang_labels = {
        loc: tuple(k for k in CLDR_LABELS if any(y == k for _, _, y in raw[loc]["train"]))
        for loc in locales
    }
    notes = [
        f"built-in: CLDR display names from babel {babel.__version__}, labelled by kind "
        "(language/territory/currency/script); names with two kinds in a locale dropped",
        f"split 60/20/20 per locale, stratified by kind, seed {seed}",
    ]
    return assemble("cldr", raw, CLDR_LABELS, notes=notes, lang_labels=lang_labels)
