"""What a dataset holds: sizes, label distributions, token lengths, notes, skipped rows."""

from __future__ import annotations

import numpy as np

from .sampling import rng_for
from .schema import SPLITS, MultilingualDataset

_OVER = (128, 256, 512)


def summarize(
    ds: MultilingualDataset,
    tokenizer=None,
    *,
    text_prefix: str = "",
    max_examples_per_language: int | None = 2000,
    seed: int = 0,
) -> dict:
    """A JSON-able summary; token lengths (untruncated, special tokens included) need a
    tokenizer and use at most `max_examples_per_language` examples drawn over all splits."""
    sizes = ds.sizes()
    summary: dict = {
        "name": ds.name,
        "task": ds.task,
        "labels": list(ds.labels),
        "languages": ds.languages(),
        "sizes": sizes,
        "totals": {s: sum(v[s] for v in sizes.values()) for s in SPLITS},
        "label_counts": {
            lang: {s: ds.label_counts(lang, s) for s in SPLITS} for lang in ds.languages()
        },
        "lang_labels": {lang: list(v) for lang, v in ds.lang_labels.items()},
        "groups": dict(ds.groups),
        "notes": list(ds.notes),
        "skipped": dict(ds.skipped),
    }
    if tokenizer is not None:
        summary["token_lengths"] = {
            lang: _token_lengths(ds, lang, tokenizer, text_prefix, max_examples_per_language, seed)
            for lang in ds.languages()
        }
    return summary


def _token_lengths(ds, lang, tokenizer, prefix, cap, seed) -> dict:
    examples = [ex for s in SPLITS for ex in ds.split(lang, s)]
    if cap is not None and len(examples) > cap:
        examples = rng_for("summary", seed, lang).sample(examples, cap)
    if not examples:
        return {"n": 0}
    texts = [prefix + ex.text for ex in examples]
    pairs = [ex.text_pair for ex in examples] if ds.task == "pair" else None
    ids = tokenizer(
        texts, pairs, truncation=False, return_attention_mask=False, return_token_type_ids=False
    )["input_ids"]
    lengths = np.array([len(x) for x in ids])
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
    out = {
        "n": len(lengths),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": int(lengths.max()),
    }
    out.update({f"over_{k}": float((lengths > k).mean()) for k in _OVER})
    return out


def _table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.2f}"
    return str(value)


def _label_cells(summary: dict, lang: str, split: str) -> list:
    """Counts per label; "-" for a label the language does not have at all."""
    counts = summary["label_counts"][lang][split]
    own = summary.get("lang_labels", {}).get(lang) or summary["labels"]
    return [counts.get(y, 0 if y in own else "-") for y in summary["labels"]]


def format_summary(summary: dict) -> str:
    """Human-readable tables of a `summarize` result."""
    labels = summary["labels"]
    out = [
        f"dataset {summary['name']} ({summary['task']}), {len(summary['languages'])} "
        f"languages, {len(labels)} labels: {', '.join(labels)}",
        "",
    ]
    sizes = summary["sizes"]
    rows = [[lang, *(sizes[lang][s] for s in SPLITS)] for lang in summary["languages"]]
    rows.append(["total", *(summary["totals"][s] for s in SPLITS)])
    out += ["examples", _table(["lang", *SPLITS], rows), ""]
    for split in SPLITS:
        if not summary["totals"][split]:
            continue
        rows = [[lang, *_label_cells(summary, lang, split)] for lang in summary["languages"]]
        out += [f"labels ({split})", _table(["lang", *labels], rows), ""]
    if "token_lengths" in summary:
        keys = ["n", "p50", "p90", "p99", "max", *(f"over_{k}" for k in _OVER)]
        rows = [
            [lang, *(stats.get(k, "") for k in keys)]
            for lang, stats in summary["token_lengths"].items()
        ]
        out += [
            "token lengths (with special tokens; over_N = share longer than N)",
            _table(["lang", *keys], rows),
            "",
        ]
    for name, langs in summary["groups"].items():
        out.append(f"group {name}: {', '.join(langs) or '-'}")
    if summary["notes"]:
        out += ["notes", *(f"- {note}" for note in summary["notes"])]
    if summary["skipped"]:
        out += ["skipped bad rows", *(f"- {path}: {n}" for path, n in summary["skipped"].items())]
    else:
        out.append("skipped bad rows: none")
    return "\n".join(out).rstrip() + "\n"
