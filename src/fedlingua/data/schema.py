"""The data model every source produces: examples, a multilingual dataset, data errors.

A source (built-in CLDR names, a preset folder, a user folder, the Hugging Face hub)
reads rows as strings, then `assemble` turns them into one `MultilingualDataset` with a
single label set, so label index i means the same class in every language and client.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

SPLITS: tuple[str, ...] = ("train", "dev", "test")
TASKS: tuple[str, ...] = ("single", "pair")

# One row as read from a source, before labels become indices: (text, text_pair, label).
RawRow = tuple[str, str | None, str]


class DataError(ValueError):
    """Bad input data: the message names the file, the physical line, the column, and a fix.

    `path`, `line` (1-based physical line, or row number for hub data) and `column` are kept
    as attributes too, so callers can point at the spot without parsing the message.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        message = (", ".join(where) + ": " if where else "") + problem
        if hint:
            message += f" -> {hint}"
        super().__init__(message)
        self.path, self.line, self.column, self.problem = path, line, column, problem


class DataUnavailableError(RuntimeError):
    """The data cannot be reached here: hub dataset offline, missing data root, ..."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int  # index into MultilingualDataset.labels
    lang: str
    text_pair: str | None = None


@dataclass
class MultilingualDataset:
    """Examples per language and split, with one label set shared by all languages.

    `groups` names language groups a report may average over (e.g. MasakhaNEWS
    {"50-shot": [...], "full-train": [...]}); `lang_labels` lists, per language, the labels
    that language actually uses (a subset of `labels` when languages differ).
    """

    name: str
    labels: tuple[str, ...]
    data: dict[str, dict[str, list[Example]]]
    task: str = "single"
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    lang_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    def languages(self) -> list[str]:
        return list(self.data)

    def split(self, lang: str, split: str) -> list[Example]:
        if lang not in self.data:
            raise KeyError(f"{self.name} has no language {lang!r}; it has {self.languages()}")
        if split not in SPLITS:
            raise KeyError(f"split must be one of {SPLITS}, got {split!r}")
        return self.data[lang].get(split, [])

    def sizes(self) -> dict[str, dict[str, int]]:
        return {lang: {s: len(self.split(lang, s)) for s in SPLITS} for lang in self.data}

    def label_counts(self, lang: str, split: str) -> dict[str, int]:
        """Examples per label name (labels with no example omitted)."""
        counts = Counter(ex.label for ex in self.split(lang, split))
        return {self.labels[i]: counts[i] for i in sorted(counts)}


def assemble(
    name: str,
    raw: dict[str, dict[str, list[RawRow]]],
    labels: tuple[str, ...] | list[str],
    *,
    task: str = "single",
    notes: list[str] | None = None,
    skipped: dict[str, int] | None = None,
    groups: dict[str, list[str]] | None = None,
    lang_labels: dict[str, tuple[str, ...]] | None = None,
) -> MultilingualDataset:
    """Turn string rows into Examples; every label must already be validated against `labels`."""
    index = {label: i for i, label in enumerate(labels)}
    data: dict[str, dict[str, list[Example]]] = {}
    for lang, splits in raw.items():
        data[lang] = {
            s: [Example(t, index[y], lang, p) for t, p, y in splits.get(s, [])] for s in SPLITS
        }
    return MultilingualDataset(
        name=name,
        labels=tuple(labels),
        data=data,
        task=task,
        notes=list(notes or []),
        skipped=dict(skipped or {}),
        groups=dict(groups or {}),
        lang_labels=dict(lang_labels or {}),
    )
