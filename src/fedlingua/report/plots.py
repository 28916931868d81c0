"""Pictures of runs: learning curves and per-language accuracy of a run, and a comparison.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global
figure state), so a run in a thread or on a server without a screen draws the same.

    curves.png     test (solid) and dev (dashed) accuracy per round per language; train loss
    languages.png  final per-language test accuracy; low-resource languages hatched,
                   zero-shot languages (no training data) in grey
    compare.png    per-language accuracy of each compare row, and accuracy vs MB communicated
    distance.png   per language, federated-minus-monolingual gain vs mean URIEL+ distance
                   to English (`fedlingua analyze distance`), one labelled point each
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fedlingua.io import write_json, write_text
from fedlingua.report.tables import curve_split

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVES, LANGUAGES, COMPARE = "curves.png", "languages.png", "compare.png"
COMPARE_CURVES = "compare-curves.png"


def _figure(width: float, height: float) -> Figure:
    # imported on first use: a run pays for matplotlib only when it draws
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def curves_figure(metrics: list[dict]) -> Figure:
    """Accuracy per round and language (test solid, dev dashed), and mean train loss."""
    fig = _figure(10, 4)
    acc, loss = fig.subplots(1, 2)
    langs = sorted({x for m in metrics for split in ("test", "dev") for x in m.get(split, {})})
    colors = {lang: f"C{i % 10}" for i, lang in enumerate(langs)}
    labelled: set[str] = set()
    for split, style in (("test", "-"), ("dev", "--")):
        for lang in langs:
            pts = [
                (m["round"], m[split][lang]["accuracy"])
                for m in metrics
                if lang in m.get(split, {})
            ]
            if pts:
                label = None if lang in labelled else lang  # one legend entry per language
                labelled.add(lang)
                acc.plot(
                    *zip(*pts, strict=True), style, marker="o", color=colors[lang], label=label
                )
    acc.set(xlabel="round", ylabel="accuracy", title="test (solid) and dev (dashed) accuracy")
    # with dev selection the rounds carry dev only (test is scored once, at the end)
    for ax in (acc, loss):
        ax.xaxis.get_major_locator().set_params(integer=True)
    if langs:
        acc.legend(fontsize="small", ncols=2)
    losses = [
        (
            m["round"],
            _mean([o["train_loss"] for o in m["federations"].values() if o.get("train_loss")]),
        )
        for m in metrics
    ]
    losses = [(r, v) for r, v in losses if v is not None]
    if losses:
        loss.plot(*zip(*losses, strict=True), marker="o", color="k")
    loss.set(xlabel="round", ylabel="loss", title="train loss (mean over federations)")
    return fig


def languages_figure(results: dict, low_resource: Sequence[str] = ()) -> Figure:
    """Per-language test accuracy; low-resource hatched, zero-shot grey, average dotted."""
    langs = list(results.get("languages", {}))
    fig = _figure(max(5.0, 0.6 * len(langs) + 2), 3.5)
    ax = fig.subplots()
    for i, lang in enumerate(langs):
        s = results["languages"][lang]
        zero_shot = s.get("train_examples", 1) == 0
        ax.bar(
            i,
            s["accuracy"],
            color="0.6" if zero_shot else "C0",
            hatch="//" if lang in low_resource else None,
            edgecolor="k",
        )
    avg = results.get("averages", {}).get("average")
    if avg is not None:
        ax.axhline(avg, color="k", linestyle=":", label=f"average {100 * avg:.1f}%")
        ax.legend(fontsize="small")
    ax.set_xticks(range(len(langs)), langs)
    ax.set(ylim=(0, 1), ylabel="test accuracy")
    ax.set_title(
        "per-language test accuracy\n(hatched: low-resource, grey: zero-shot)", fontsize="medium"
    )
    return fig


def compare_figure(rows: Sequence[dict]) -> Figure:
    """Left: per-language accuracy of every row. Right: average accuracy vs MB sent."""
    fig = _figure(11, 4)
    bars, cost = fig.subplots(1, 2)
    langs = list(rows[0]["languages"]) if rows else []
    width = 0.8 / max(len(rows), 1)
    for k, r in enumerate(rows):
        xs = [i + k * width for i in range(len(langs))]
        ys = [r["languages"].get(x, {}).get("accuracy") or 0.0 for x in langs]
        bars.bar(xs, ys, width, label=_row_label(r))
    bars.set_xticks([i + 0.4 - width / 2 for i in range(len(langs))], langs)
    bars.set(ylim=(0, 1), ylabel="test accuracy", title="per-language accuracy")
    bars.legend(fontsize="small")
    for k, r in enumerate(rows):
        mb = r["communication"]["bytes_total"] / 1e6
        cost.scatter(mb, r["averages"]["average"], color=f"C{k % 10}", label=_row_label(r))
    cost.set(xlabel="MB communicated (0: local training)", ylabel="average accuracy")
    cost.set_title("accuracy vs communication", fontsize="medium")
    cost.legend(fontsize="small")
    return fig


def compare_curves_figure(rows: Sequence[dict]) -> Figure:
    """Mean dev accuracy per round of every row (test for rows without dev selection)."""
    fig = _figure(7, 4)
    ax = fig.subplots()
    for k, r in enumerate(rows):
        split = curve_split(r)
        pts = [(p["round"], p[split]) for p in r["curve"] if p.get(split) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", color=f"C{k % 10}", label=_row_label(r))
    ax.set(xlabel="round", ylabel="mean accuracy", title="learning curves (dev where selected)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if rows:
        ax.legend(fontsize="small")
    return fig


def distance_figure(panels: Sequence[tuple[str, dict]]) -> Figure:
    """One panel per (title, distance analysis): gain vs mean distance to English, labelled."""
    fig = _figure(max(5.5, 5.0 * len(panels)), 4.5)
    for ax, (title, result) in zip(
        fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        pts = [
            (r["to_english"]["mean"], 100 * r["gain"], r["language"])
            for r in result["languages"]
            if r["to_english"]["mean"] is not None
        ]
        for x, y, label in pts:
            ax.scatter(x, y, color="C0")
            ax.annotate(label, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        ax.axhline(0, color="k", linestyle=":", linewidth=1)
        c = result["correlations"]["to_english"]["mean"]
        stat = "rho undefined" if c["rho"] is None else f"rho {c['rho']:+.2f}, p {c['p']:.3f}"
        ax.set_title(f"{title}{': ' if title else ''}{stat}, n {c['n']}", fontsize="medium")
        ax.set(
            xlabel="mean URIEL+ distance to English\n(syntactic, genetic, geographic)",
            ylabel="gain: federated - monolingual (points)",
        )
    return fig


def _row_label(r: dict) -> str:
    return f"{r['paradigm']} {r['method']}"


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def image_links(names: Sequence[str]) -> str:
    """Markdown image links to pictures next to the markdown file."""
    return "\n".join(f"![{Path(n).stem}]({n})" for n in names) + "\n"


def write_run_files(
    folder: str | Path, labels: Sequence[str], low_resource: Sequence[str] = ()
) -> list[Path]:
    """What a finished run leaves for its users next to results.json: labels.json (label
    names in index order: inference needs them without loading the data) and the
    pictures curves.png and languages.png, linked from report.md."""
    write_json(Path(folder) / "labels.json", list(labels))
    return write_run_pictures(folder, low_resource)


def write_run_pictures(folder: str | Path, low_resource: Sequence[str] = ()) -> list[Path]:
    """curves.png and languages.png of the finished run in `folder`, linked from report.md."""
    from fedlingua.report.rundir import RunDir

    rundir = RunDir(folder)
    results = rundir.results() or {}
    paths = [
        save(curves_figure(rundir.metrics()), rundir.path / CURVES),
        save(languages_figure(results, low_resource), rundir.path / LANGUAGES),
    ]
    report = rundir.path / "report.md"
    if report.is_file():
        text = report.read_text(encoding="utf-8").rstrip("\n")
        links = image_links([p.name for p in paths])
        if links not in text + "\n":  # drawn again (e.g. by hand): link once
            write_text(report, text + "\n\n" + links)
    return paths
