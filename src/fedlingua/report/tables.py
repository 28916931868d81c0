"""Markdown tables: one run's per-language scores, and the paper-style comparison of runs."""

from __future__ import annotations

from collections.abc import Sequence


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def language_table(results: dict) -> str:
    """Per-language accuracy / macro-F1 of one run, with the group averages."""
    lines = [
        "| language | train examples | test examples | accuracy | macro-F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for lang, s in results["languages"].items():
        lines.append(
            f"| {lang} | {s.get('train_examples', 0)} | {s['n']} | {_pct(s['accuracy'])} | "
            f"{_pct(s['macro_f1'])} |"
        )
    acc, f1 = results["averages"], results["averages_f1"]
    for key, label in (
        ("average", "average"),
        ("low_resource_average", "low-resource average"),
        ("zero_shot_average", "zero-shot average"),
    ):
        if acc.get(key) is not None:
            lines.append(f"| **{label}** | | | {_pct(acc[key])} | {_pct(f1[key])} |")
    return "\n".join(lines) + "\n"


def row_label(results: dict) -> str:
    return f"{results['paradigm']} {results['method']}"


def compare_table(rows: Sequence[dict], languages: Sequence[str] | None = None) -> str:
    """Paper-style table: rows = paradigm/method, columns = languages, averages, cost."""
    if not rows:
        return ""
    if languages is None:
        languages = list(rows[0]["languages"])
    head = ["paradigm / method", *languages, "avg", "low-res avg", "trainable", "MB comm."]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in rows:
        lines.append(_row(row_label(r), r, r, languages))
        if r.get("personalized"):  # its own, labelled row: never mixed into the global one
            label = f"{row_label(r)}, personalized (+{r['personalized']['steps']} local steps)"
            lines.append(_row(label, r["personalized"], r, languages))
    return "\n".join(lines) + "\n"


def _row(label: str, scored: dict, r: dict, languages: Sequence[str]) -> str:
    langs = [_pct(scored["languages"].get(lang, {}).get("accuracy")) for lang in languages]
    cells = [
        label,
        *langs,
        _pct(scored["averages"]["average"]),
        _pct(scored["averages"]["low_resource_average"]),
        _count(r["parameters"]["trainable"]),
        "0 (local)" if r["strategy"] == "local" else _mb(r["communication"]["bytes_total"]),
    ]
    return "| " + " | ".join(cells) + " |"


def curve_split(row: dict) -> str:
    """The split a run's learning curve follows: dev where it selects on dev, else test."""
    return "dev" if any("dev" in p for p in row["curve"]) else "test"


def curves_table(rows: Sequence[dict]) -> str:
    """Learning curves side by side: mean dev accuracy per round of every row (mean test
    accuracy for rows that do not select on dev); `-` after a row stopped."""
    if not rows:
        return ""
    split = {id(r): curve_split(r) for r in rows}
    head = ["round", *(f"{row_label(r)} ({split[id(r)]})" for r in rows)]
    points = {id(r): {p["round"]: p.get(split[id(r)]) for p in r["curve"]} for r in rows}
    rounds = sorted({rnd for pts in points.values() for rnd in pts})
    lines = ["| " + " | ".join(head) + " |", "|---:" * len(head) + "|"]
    for rnd in rounds:
        cells = [str(rnd), *(_pct(points[id(r)].get(rnd)) for r in rows)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
