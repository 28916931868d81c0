"""Folder source: `<root>/<lang>/<split>.{tsv,csv,jsonl}` plus optional `<lang>/labels.txt`.

The same building blocks (finding split files, labels.txt, per-language reading with a
label set) serve the presets in `presets.py`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from .readers import (
    FORMATS,
    RowPolicy,
    TableSpec,
    assemble_read,
    iter_delimited,
    iter_jsonl,
    read_rows,
    read_text,
)
from .schema import SPLITS, DataError, DataUnavailableError, MultilingualDataset, RawRow

COLUMN_KEYS: tuple[str, ...] = ("text", "text_pair", "label")


def find_split_file(lang_dir: Path, split: str, stems: Iterable[str] | None = None) -> Path | None:
    """The file holding `split` (first of `stems` that exists, any supported extension)."""
    for stem in stems or (split,):
        found = [
            lang_dir / f"{stem}{ext}" for ext in FORMATS if (lang_dir / f"{stem}{ext}").is_file()
        ]
        if len(found) > 1:
            raise DataError(
                f"several files for split {split!r}: {[p.name for p in found]}",
                path=str(lang_dir),
                hint="keep exactly one of them",
            )
        if found:
            return found[0]
    return None


def missing_split_error(
    lang_dir: Path, split: str, stems: Iterable[str] | None = None
) -> DataError:
    tried = [f"{stem}{ext}" for stem in (stems or (split,)) for ext in FORMATS]
    return DataError(
        f"language folder has no {split!r} split (looked for {', '.join(tried)})",
        path=str(lang_dir / f"{next(iter(stems or (split,)))}.tsv"),
        hint=f"add the file, or leave language {lang_dir.name!r} out with languages=[...]",
    )


def read_labels_file(path: Path) -> tuple[str, ...]:
    """One label per line; blank lines ignored; duplicates are an error."""
    labels: list[str] = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        label = line.strip()
        if not label:
            continue
        if label in labels:
            raise DataError(
                f"duplicate label {label!r}",
                path=str(path),
                line=number,
                hint="list each label once",
            )
        labels.append(label)
    if not labels:
        raise DataError("labels file lists no labels", path=str(path), hint="one label per line")
    return tuple(labels)


def select_languages(found: list[str], languages: list[str] | None, where: str) -> list[str]:
    """`languages` (in the order given) after checking each exists; default: all, sorted."""
    if languages is None:
        return sorted(found)
    unknown = [lang for lang in languages if lang not in found]
    if unknown:
        raise DataError(
            f"unknown language(s) {unknown} in {where}",
            hint=f"available: {', '.join(sorted(found))}",
        )
    if len(set(languages)) != len(languages):
        raise DataError(f"languages lists a language twice: {languages}")
    return list(languages)


def global_labels(
    per_lang: dict[str, tuple[str, ...]], label_names: list[str] | None
) -> tuple[str, ...]:
    """label_names as given; else the shared list when all languages agree; else sorted union."""
    if label_names is not None:
        return tuple(label_names)
    distinct = set(per_lang.values())
    if len(distinct) == 1:
        return next(iter(distinct))
    return tuple(sorted({label for labels in per_lang.values() for label in labels}))


def read_language(
    files: dict[str, Path],
    spec_for: Callable[[Path], TableSpec],
    *,
    allowed: tuple[str, ...] | None,
    policy: RowPolicy,
    label_names: list[str] | None = None,
) -> tuple[dict[str, list[RawRow]], tuple[str, ...]]:
    """Read one language's split files; without a label set, train's labels define it."""
    rows: dict[str, list[RawRow]] = {}
    hint = "add the label to labels.txt or pass label_names"
    if allowed is None:
        rows["train"] = read_rows(
            files["train"], spec_for(files["train"]), label_names=label_names, policy=policy
        )
        allowed = tuple(sorted({label for _, _, label in rows["train"]}))
        hint = (
            "add labels.txt to the language folder listing every label, or pass label_names "
            "(without them only labels seen in train are known)"
        )
    for split, path in files.items():
        if split not in rows:
            rows[split] = read_rows(
                path,
                spec_for(path),
                allowed=set(allowed),
                label_names=label_names,
                policy=policy,
                label_hint=hint,
            )
    return rows, allowed


def parse_columns(columns: dict[str, str] | None, header_names: list[str]) -> dict[str, tuple]:
    """Schema field -> column name(s); text may join columns with '+' ("headline+text")."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(COLUMN_KEYS))
    if unknown:
        raise ValueError(f"columns keys must be among {COLUMN_KEYS}, got {unknown}")
    text = columns.get("text", "text")
    if "+" in text and text not in header_names:
        text_cols = tuple(part.strip() for part in text.split("+"))
    else:
        text_cols = (text,)
    pair = columns.get("text_pair")
    if pair is None and not columns and "text_pair" in header_names:
        pair = "text_pair"
    return {"text": text_cols, "text_pair": (pair,), "label": (columns.get("label", "label"),)}


def split_stems(splits: dict[str, str] | None) -> dict[str, tuple[str, ...]]:
    """File stem(s) tried for each split: `splits[split]`, else the split's own name."""
    unknown = sorted(set(splits or {}) - set(SPLITS))
    if unknown:
        raise DataError(f"splits names unknown splits {unknown}", hint=f"use {', '.join(SPLITS)}")
    return {s: ((splits or {}).get(s) or s,) for s in SPLITS}


def _shared_split_notes(stems: dict[str, tuple[str, ...]]) -> list[str]:
    """A note (and a warning) for every file that serves two splits."""
    notes = []
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        if stems[a] == stems[b]:
            note = f"splits {a} and {b} read the same file {stems[a][0]!r}"
            if a == "train":
                note += f": {b} scores on training data (dev selection then selects on it)"
            warnings.warn(note, stacklevel=3)
            notes.append(note)
    return notes


def _peek_names(path: Path, quoting: str) -> list[str]:
    """Header names (or first object's keys for jsonl); [] if the file is empty or invalid."""
    policy = RowPolicy("skip")
    if path.suffix == ".jsonl":
        first = next(iter_jsonl(path, policy=policy), None)
        return list(first[1]) if first else []
    first = next(
        iter_delimited(path, delimiter=FORMATS[path.suffix], quoting=quoting, policy=policy), None
    )
    return [name.strip() for name in first[1]] if first else []


def _language_folders(root: Path, stems: dict[str, str]) -> list[str]:
    """The sub-folders of `root` that hold at least one split file."""
    found = [
        d.name
        for d in root.iterdir()
        if d.is_dir() and any(find_split_file(d, s, stems[s]) for s in SPLITS)
    ]
    if not found:
        raise DataError(
            "no language folders with split files found",
            path=str(root),
            hint="lay the data out as <root>/<lang>/<split>.tsv|csv|jsonl with split in "
            "train/dev/test",
        )
    return found


def _spec_reader(columns: dict[str, str] | None, quoting: str | None):
    """path -> how to read that file: its columns (by header name or index) and quoting."""

    def spec_for(path: Path) -> TableSpec:
        q = quoting or "csv"
        header = not (columns and all(v.isdecimal() for v in columns.values()))
        fields = parse_columns(columns, _peek_names(path, q) if header else [])
        return TableSpec(
            text=fields["text"],
            text_pair=fields["text_pair"][0],
            label=fields["label"][0],
            header=header,
            quoting=q,
        )

    return spec_for


def load_folder(
    root: str | Path,
    *,
    name: str | None = None,
    languages: list[str] | None = None,
    columns: dict[str, str] | None = None,
    label_names: list[str] | None = None,
    on_bad_rows: str = "error",
    quoting: str | None = None,
    required: tuple[str, ...] = ("train", "test"),
    splits: dict[str, str] | None = None,
) -> MultilingualDataset:
    """Load `<root>/<lang>/<split>.{tsv,csv,jsonl}`.

    Files have a header unless every `columns` value is a 0-based index ("0", "1", ...).
    Default columns: text, label, and text_pair when the header has it. `quoting`: "csv"
    (default for .tsv/.csv, quote-aware) or "none" (plain: split each line).
    Labels: `label_names`, else `<lang>/labels.txt`, else those seen in train.
    `splits` maps a split to the file stem that holds it (default: its own name), e.g.
    {"train": "dev", "dev": "dev", "test": "test"} for a dataset without a train file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataUnavailableError(f"data folder {root} does not exist")
    policy = RowPolicy(on_bad_rows)
    stems = split_stems(splits)
    spec_for = _spec_reader(columns, quoting)
    notes: list[str] = []
    raw: dict[str, dict[str, list[RawRow]]] = {}
    lang_labels: dict[str, tuple[str, ...]] = {}
    for lang in select_languages(_language_folders(root, stems), languages, str(root)):
        lang_dir = root / lang
        files = {s: p for s in SPLITS if (p := find_split_file(lang_dir, s, stems[s])) is not None}
        for split in required:
            if split not in files:
                raise missing_split_error(lang_dir, split, stems[split])
        notes += [f"{lang} has no {split} split" for split in SPLITS if split not in files]
        allowed = tuple(label_names) if label_names is not None else None
        if allowed is None and (lang_dir / "labels.txt").is_file():
            allowed = read_labels_file(lang_dir / "labels.txt")
        raw[lang], lang_labels[lang] = read_language(
            files, spec_for, allowed=allowed, policy=policy, label_names=label_names
        )
    labels = global_labels(lang_labels, label_names)
    notes += _shared_split_notes(stems)
    has_pair = (row[1] is not None for s in raw.values() for r in s.values() for row in r[:1])
    task = "pair" if any(has_pair) else "single"
    return assemble_read(name or root.name, raw, labels, task, notes, policy, lang_labels)
