"""Reading tsv / csv / jsonl files into (text, text_pair, label) rows, validating every row.

Two quoting conventions exist in the wild and a reader for one corrupts the other:
- "csv": quote-aware (a field may be wrapped in `"`, inner `"` doubled, and may span
  physical lines). MasakhaNEWS and SIB-200 need it. Parsing is strict, so a stray quote
  fails loudly instead of silently swallowing separators.
- "none": one row per physical line, split on the delimiter, quotes are literal text.
  XNLI and XGLUE-NC need it (XGLUE-NC has fields that start with a literal `"`).

Errors name the file, the 1-based physical line where the row starts, and the column.
Files are UTF-8 (a leading byte-order mark is dropped); bytes that are not UTF-8 are a
DataError naming the line and byte, never a UnicodeDecodeError.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .schema import DataError, MultilingualDataset, RawRow, assemble

FORMATS: dict[str, str | None] = {".tsv": "\t", ".csv": ",", ".jsonl": None}
QUOTING: tuple[str, ...] = ("csv", "none")
ON_BAD_ROWS: tuple[str, ...] = ("error", "skip")

# Long articles exceed csv's default 128 KiB field limit; raise it (process-wide) once.
_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


class RowPolicy:
    """What to do with a bad row: raise its DataError, or count it per file and carry on."""

    def __init__(self, on_bad_rows: str = "error") -> None:
        if on_bad_rows not in ON_BAD_ROWS:
            raise ValueError(f"on_bad_rows must be one of {ON_BAD_ROWS}, got {on_bad_rows!r}")
        self.mode = on_bad_rows
        self.skipped: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def bad(self, error: DataError) -> None:
        if self.mode == "error":
            raise error
        key = str(error.path)
        self.skipped[key] = self.skipped.get(key, 0) + 1
        where = [f"line {error.line}"] if error.line else []
        where += [f"column {error.column}"] if error.column else []
        self.first.setdefault(key, ", ".join([*where, error.problem]))

    def notes(self) -> list[str]:
        return [
            f"skipped {n} bad row(s) in {key}; first: {self.first[key]}"
            for key, n in self.skipped.items()
        ]

    def keep(self, rows: list[RawRow], row: RawRow | DataError) -> None:
        """Append a checked row, or deal with its error (raise, or count and skip)."""
        if isinstance(row, DataError):
            self.bad(row)
        else:
            rows.append(row)


def assemble_read(
    name: str, raw: dict, labels, task: str, notes: list[str], policy: RowPolicy, lang_labels: dict
) -> MultilingualDataset:
    """The dataset of rows read under `policy` (its skipped rows counted in the notes)."""
    notes = notes + policy.notes()
    return assemble(
        name, raw, labels, task=task, notes=notes, skipped=policy.skipped, lang_labels=lang_labels
    )


@dataclass(frozen=True)
class TableSpec:
    """How one file maps onto the schema.

    `text` lists one or more columns (joined with a space, e.g. headline + body); columns
    are header names, or 0-based indices written as strings for headerless files (and
    keys for jsonl). `n_fields` is the expected field count of a headerless row (default:
    the first row's).
    """

    text: tuple[str, ...]
    label: str
    text_pair: str | None = None
    header: bool = True
    quoting: str = "csv"
    n_fields: int | None = None

    def columns(self) -> list[str]:
        return [*self.text, *([self.text_pair] if self.text_pair else []), self.label]


def iter_delimited(
    path: Path, *, delimiter: str, quoting: str, policy: RowPolicy
) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, fields) per row; blank lines are not rows."""
    if quoting not in QUOTING:
        raise ValueError(f"quoting must be one of {QUOTING}, got {quoting!r}")
    if quoting == "none":
        for number, line in enumerate(text_lines(path, newline=""), start=1):
            line = line.rstrip("\n").rstrip("\r")
            if line:
                yield number, line.split(delimiter)
        return
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    # csv reads any iterable of lines, so decoding errors surface as DataError here too.
    reader = csv.reader(text_lines(path, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            policy.bad(
                DataError(
                    f"malformed quoting ({exc})",
                    path=str(path),
                    line=start,
                    hint="fix the quotes (a quoted field must end with a quote followed by "
                    "a separator; inner quotes are doubled); if quotes in this file are "
                    "literal text, read it with quoting='none'",
                )
            )
            continue
        if fields:
            yield start, fields


def iter_jsonl(path: Path, *, policy: RowPolicy) -> Iterator[tuple[int, dict]]:
    """Yield (line, object) per non-blank line; a line that is not a JSON object is bad."""
    for number, line in enumerate(text_lines(path, newline=None), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and integers past Python's digit limit;
            # RecursionError, arrays nested thousands deep.
            policy.bad(_json_error(path, number, exc))
            continue
        if not isinstance(obj, dict):
            policy.bad(
                DataError(
                    f"expected a JSON object, found {type(obj).__name__}",
                    path=str(path),
                    line=number,
                    hint='write one object per line, e.g. {"text": "...", "label": "..."}',
                )
            )
            continue
        yield number, obj


def _json_error(path: Path, line: int, exc: Exception) -> DataError:
    if isinstance(exc, json.JSONDecodeError):
        problem, column = f"invalid JSON ({exc.msg})", f"{exc.colno} (character)"
    elif isinstance(exc, RecursionError):
        problem, column = "invalid JSON (nested too deeply)", None
    else:
        problem, column = f"invalid JSON ({exc})", None
    return DataError(
        problem,
        path=str(path),
        line=line,
        column=column,
        hint='each line must be one JSON object, e.g. {"text": "...", "label": "..."}',
    )


def text_lines(path: Path, *, newline: str | None) -> Iterator[str]:
    """The lines of a UTF-8 file (a byte-order mark dropped); other bytes are a DataError."""
    with open(path, encoding="utf-8-sig", newline=newline) as fh:
        try:
            yield from fh
        except UnicodeDecodeError:
            raise _decode_error(path) from None


def read_text(path: Path) -> str:
    """A whole UTF-8 file (a byte-order mark dropped); other bytes are a DataError."""
    return "".join(text_lines(path, newline=None))


def _decode_error(path: Path) -> DataError:
    """Where the first byte that is not UTF-8 sits, and what the file probably is instead."""
    data = path.read_bytes()  # only on this error path: find the spot in the raw bytes
    try:
        data.decode("utf-8")
        start = 0
    except UnicodeDecodeError as exc:
        start = exc.start
    line_start = data.rfind(b"\n", 0, start) + 1
    problem = f"not UTF-8 text (byte 0x{data[start : start + 1].hex()} cannot be decoded)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        problem = "not UTF-8 text (it starts with a UTF-16 byte-order mark)"
    return DataError(
        problem,
        path=str(path),
        line=data.count(b"\n", 0, start) + 1,
        column=f"{start - line_start + 1} (byte)",
        hint="save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8, or 'Save as UTF-8' in a "
        "spreadsheet)",
    )


def count_rows(path: str | Path, *, quoting: str, header: bool) -> int:
    """Rows in a delimited file as a reader with this quoting sees them (header excluded)."""
    path = Path(path)
    rows = iter_delimited(path, delimiter=FORMATS[path.suffix], quoting=quoting, policy=RowPolicy())
    return sum(1 for _ in rows) - int(header)


def read_rows(
    path: str | Path,
    spec: TableSpec,
    *,
    allowed: Collection[str] | None = None,
    label_names: Sequence[str] | None = None,
    policy: RowPolicy | None = None,
    label_hint: str = "add the label to labels.txt or pass label_names",
) -> list[RawRow]:
    """Read and validate one file; `allowed` is the label set rows must use (None: any)."""
    path = Path(path)
    policy = policy or RowPolicy()
    if path.suffix not in FORMATS:
        raise DataError(
            f"unsupported file type {path.suffix!r}; use .tsv, .csv or .jsonl", path=str(path)
        )
    if path.suffix == ".jsonl":
        return _rows_from_jsonl(path, spec, allowed, label_names, policy, label_hint)
    return _rows_from_delimited(path, spec, allowed, policy, label_hint)


def _column_index(path: Path, spec: TableSpec, records) -> tuple[dict[str, int], int, list[str]]:
    """(column -> field index, fields per row (0: from the first row), header names);
    reads the header row from `records` when the file has one."""
    names: list[str]
    if spec.header:
        first = next(records, None)
        if first is None:
            raise DataError("the file is empty (no header row)", path=str(path), line=1)
        names = [n.strip() for n in first[1]]
        for col in spec.columns():
            if col not in names:
                raise DataError(
                    f"missing column {col!r} in the header",
                    path=str(path),
                    line=first[0],
                    column=repr(col),
                    hint=f"the header has {names}; map schema fields to these with "
                    "columns={'text': ..., 'label': ...}",
                )
        n_fields = len(names)
        index = {col: names.index(col) for col in spec.columns()}
    else:
        for col in spec.columns():
            if not col.isdecimal():  # isdigit() also accepts '²', which int() rejects
                raise DataError(
                    f"column {col!r} must be a 0-based index for a file without a header",
                    path=str(path),
                    hint="pass columns={'text': '0', 'label': '1'} (indices as strings)",
                )
        index = {col: int(col) for col in spec.columns()}
        n_fields = spec.n_fields or 0
        names = []
    return index, n_fields, names


def _rows_from_delimited(
    path: Path, spec: TableSpec, allowed: Collection[str] | None, policy: RowPolicy, label_hint: str
) -> list[RawRow]:
    records = iter_delimited(
        path, delimiter=FORMATS[path.suffix], quoting=spec.quoting, policy=policy
    )
    index, n_fields, names = _column_index(path, spec, records)
    text_idx = [index[c] for c in spec.text]
    pair_idx = index[spec.text_pair] if spec.text_pair else None
    label_idx = index[spec.label]
    checks = dict(spec=spec, allowed=allowed, label_hint=label_hint)
    rows: list[RawRow] = []
    for line, fields in records:
        if not n_fields:
            n_fields = max(len(fields), max(index.values()) + 1)
        if len(fields) != n_fields:
            policy.bad(_field_count_error(path, line, fields, n_fields, names, spec.quoting))
            continue
        text, label = [fields[i] for i in text_idx], fields[label_idx]
        pair = None if pair_idx is None else fields[pair_idx]
        policy.keep(rows, check_row(path, line, text=text, pair=pair, label=label, **checks))
    return rows


def _field_count_error(
    path: Path, line: int, fields: list[str], n: int, names: list[str], quoting: str
) -> DataError:
    sep = "tab" if path.suffix == ".tsv" else "comma"
    col = min(len(fields), n) + 1
    col_name = f"{col} ({names[col - 1]!r})" if names and col <= len(names) else str(col)
    if quoting == "csv":
        hint = (
            f"every row needs exactly {n} {sep}-separated fields; quote a field that contains "
            f'a {sep}, quote or newline ("..." with inner quotes doubled)'
        )
    else:
        hint = (
            f"every line needs exactly {n} {sep}-separated fields; a field may not contain a "
            f"{sep} or newline; if fields are wrapped in quotes, read it with quoting='csv'"
        )
    return DataError(
        f"expected {n} fields, found {len(fields)}",
        path=str(path),
        line=line,
        column=col_name,
        hint=hint,
    )


def check_row(
    path: str | Path,
    line: int,
    *,
    text: list,
    pair,
    label,
    spec: TableSpec,
    allowed: Collection[str] | None,
    label_hint: str,
) -> RawRow | DataError:
    """Validate one row's values; returns the row, or the error describing what is wrong."""
    for col, value in [
        *zip(spec.text, text, strict=True),
        (spec.text_pair, pair),
        (spec.label, label),
    ]:
        if col is not None and not isinstance(value, str):
            kind = "missing" if value is None else f"a {type(value).__name__}, not a string"
            return DataError(
                f"value is {kind}",
                path=str(path),
                line=line,
                column=repr(col),
                hint="every row needs a string in this column",
            )
    joined = " ".join(part.strip() for part in text if part.strip())
    if not joined:
        return _empty(path, line, "text", " + ".join(repr(c) for c in spec.text), "its text")
    if spec.text_pair is not None:
        pair = pair.strip()
        if not pair:
            return _empty(path, line, "text_pair", repr(spec.text_pair), "its second text")
    label = label.strip()
    if not label:  # else a blank cell in train silently becomes a class named ''
        return _empty(path, line, "label", repr(spec.label), "its label")
    if allowed is not None and label not in allowed:
        shown = sorted(allowed)
        return DataError(
            f"unknown label {label!r} (known: {', '.join(shown)})",
            path=str(path),
            line=line,
            column=repr(spec.label),
            hint=f"fix the label, or {label_hint} (or pass on_bad_rows='skip')",
        )
    return joined, pair, label


def _empty(path: str | Path, line: int, field: str, column: str, what: str) -> DataError:
    return DataError(
        f"empty {field}",
        path=str(path),
        line=line,
        column=column,
        hint=f"remove the row or fill in {what} (or pass on_bad_rows='skip')",
    )


def _rows_from_jsonl(
    path: Path,
    spec: TableSpec,
    allowed: Collection[str] | None,
    label_names: Sequence[str] | None,
    policy: RowPolicy,
    label_hint: str,
) -> list[RawRow]:
    checks = dict(spec=spec, allowed=allowed, label_hint=label_hint)
    rows: list[RawRow] = []
    for line, obj in iter_jsonl(path, policy=policy):
        missing = [c for c in spec.columns() if c not in obj]
        if missing:
            policy.bad(
                DataError(
                    f"missing key {missing[0]!r}",
                    path=str(path),
                    line=line,
                    column=repr(missing[0]),
                    hint=f"the object has keys {sorted(obj)}; map schema fields to keys with "
                    "columns={'text': ..., 'label': ...}",
                )
            )
            continue
        label = obj[spec.label]
        if isinstance(label, int) and not isinstance(label, bool):
            if label_names is not None and not 0 <= label < len(label_names):
                policy.bad(
                    DataError(
                        f"label index {label} out of range for {len(label_names)} label_names",
                        path=str(path),
                        line=line,
                        column=repr(spec.label),
                        hint="fix the index or the label_names list",
                    )
                )
                continue
            label = label_names[label] if label_names is not None else str(label)
        text, pair = [obj[c] for c in spec.text], obj[spec.text_pair] if spec.text_pair else None
        policy.keep(rows, check_row(path, line, text=text, pair=pair, label=label, **checks))
    return rows
