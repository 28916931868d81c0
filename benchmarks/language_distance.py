"""The paper's language-distance claim on the committed paper tables.

For each of benchmarks/results/sib200.json, masakhanews.json and xnli.json (written by
paper_tables.py), runs `fedlingua analyze distance`'s analysis (fedlingua.report.distance):
per language the federated-minus-monolingual prompt-encoder gain (mean over the seeds a
table has), its URIEL+ distances to English and to the nearest other client language, and
Spearman's rho between the gain and each distance. No training: it reads results only,
so it takes seconds. Needs the `analysis` extra (urielplus).

Usage:  .venv/bin/python benchmarks/language_distance.py
Writes benchmarks/results/language_distance.md / .json / .png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fedlingua.io import read_json, write_json, write_text
from fedlingua.report import typology
from fedlingua.report.distance import analyze, markdown, read_gains, summary
from fedlingua.report.plots import distance_figure, save

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
import verdict  # noqa: E402

TABLES = ("sib200", "masakhanews", "xnli")
COMMAND = "python benchmarks/language_distance.py"


def _read_note(table: dict, name: str) -> str:
    rounds = table.get("budget", {}).get("overrides", {}).get("federation.rounds")
    return f"- `results/{name}.json`, written by `{table.get('command', '?')}`" + (
        f": {rounds} rounds per row" if rounds is not None else ""
    )


def main() -> None:
    if not typology.available():
        sys.exit("needs the URIEL+ database: pip install -e '.[analysis]'")
    results, notes = {}, []
    for name in TABLES:
        path = RESULTS / f"{name}.json"
        results[name] = analyze(read_gains(path))
        results[name]["source"] = f"benchmarks/results/{name}.json"  # not this machine's path
        notes.append(_read_note(read_json(path), name))
    lines = [
        "# Language distance and the federated gain (paper tables)",
        "",
        f"Command: `{COMMAND}` (reads results only, no training).",
        "",
        "Results read (the committed paper tables, rows trained to convergence; rerun "
        "this after a table changes: the seeds each table holds are named below):",
        *notes,
        "",
        "The paper's claim: the federated gain is largest for the languages far from the "
        "high-resource ones. Spearman's rank correlation of the per-language gain with the "
        "mean URIEL+ distance (syntactic, genetic, geographic) to English:",
        "",
        *(f"- {n}: {summary(results[n]['correlations']['to_english']['mean'])}" for n in TABLES),
        "",
        "![gain vs mean distance to English, per dataset](language_distance.png)",
        "",
    ]
    for name in TABLES:
        lines.append(markdown(results[name], title=name, level=2, image=None))
    write_text(RESULTS / "language_distance.md", "\n".join(lines))
    write_json(RESULTS / "language_distance.json", {"command": COMMAND, "tables": results})
    save(distance_figure([(n, results[n]) for n in TABLES]), RESULTS / "language_distance.png")
    verdict.update()  # the READMEs' claim tables follow the results files
    print("\n".join(lines))


if __name__ == "__main__":
    main()
