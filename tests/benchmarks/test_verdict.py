"""benchmarks/verdict.py: the README's verdict block matches the committed results, and
each claim is judged from the rows it names (pending where they have not run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import verdict  # noqa: E402


def _row(paradigm, method, accs, low, up=0):
    langs = {x: {"accuracy": a} for x, a in accs.items()}
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "paradigm": paradigm,
        "method": method,
        "languages": langs,
        "averages": {
            "average": mean(list(accs.values())),
            "low_resource_average": mean([accs[x] for x in low]),
        },
        "communication": {"bytes_up_per_client_round": up},
    }


def _table():
    low = ["yo", "am"]
    rows = [
        _row("federated", "prompt-encoder", {"en": 0.80, "yo": 0.60, "am": 0.70}, low, 5e5),
        _row("monolingual", "prompt-encoder", {"en": 0.82, "yo": 0.50, "am": 0.50}, low),
        _row("centralized", "prompt-encoder", {"en": 0.85, "yo": 0.65, "am": 0.72}, low),
        _row("federated", "full", {"en": 0.84, "yo": 0.55, "am": 0.60}, low, 8.6e7),
    ]
    seeds = lambda accs: [  # noqa: E731
        {"seed": s, "average": a, "languages": {"en": a, "yo": a - 0.1, "am": a}}
        for s, a in enumerate(accs)
    ]
    data = {
        "recipe": {},
        "rows": rows,
        "low_resource": low,
        "communication_ratio_prompt_vs_full": 5e5 / 8.6e7,
        "stability": {
            verdict.FED: seeds([0.70, 0.71, 0.70]),
            verdict.MONO: seeds([0.60, 0.50, 0.66]),
        },
    }
    return verdict.Table("toy", data)


def test_claims_are_judged_from_the_rows_they_name():
    t = _table()
    assert t.beats_local().startswith("**yes**: 70.0 vs 60.7 (seed 0); ahead on 2 of 3 languages")
    low = t.low_resource()
    assert "low-resource 65.0 vs 50.0 (+15.0), other languages -2.0" in low
    assert low.endswith("largest: am +20.0, yo +10.0")
    assert t.stabler().startswith("**yes**") and "0.6 vs 8.1 points" in t.stabler()
    assert t.communication().startswith("**yes**") and "99.42% less" in t.communication()
    assert t.centralized_on_top().startswith("**yes**: 74.0 vs best federated prompt-encoder 70.0")
    assert t.lora_strongest() == "pending (federated:lora not run yet)"


def test_a_file_from_before_training_to_convergence_counts_as_pending():
    old = verdict.Table("old", {"rows": _table().data["rows"]})  # no recipe: a 3-round table
    assert old.beats_local().startswith("pending")


def test_readme_verdict_block_matches_the_results_files():
    proc = subprocess.run(
        [sys.executable, str(BENCH / "verdict.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_unseen_and_data_efficiency_lines_give_the_figures(monkeypatch):
    def versus(other: str, averages: list[float], ahead: int) -> dict:
        fed = [0.70, 0.72]  # seed 2's federated row has no monolingual or centralized pair
        return {
            "seeds": [0, 1],
            "averages": {"federated": fed, other: averages},
            "differences": [100 * (f - o) for f, o in zip(fed, averages, strict=True)],
            "ahead": ahead,
            "languages": 2,
        }

    unseen = {
        "pending": ["federated:prompt-encoder seed 2"],
        "verdicts": {
            "federated_vs_mono_dev": versus("mono_dev", [0.60, 0.62], 1),
            "federated_vs_centralized": versus("centralized", [0.75, 0.77], 0),
        },
    }
    efficiency = {
        "pending": [],
        "points": {"sib200": {"8": {verdict.FED: {}, verdict.MONO: {}}, "32": {verdict.FED: {}}}},
        "crossings": {
            "sib200": {"average": {"ahead": "below", "at": 42.1, "text": "catches up at 64"}}
        },
    }
    files = {"unseen_languages": unseen, "data_efficiency": efficiency}
    monkeypatch.setattr(verdict, "_load", files.get)
    assert verdict.unseen_cell() == (
        "**yes**: held-back average 71.0 ± 1.4 vs 61.0 ± 1.4 for the best monolingual transfer "
        "chosen on dev (+10.0), federated ahead on 1 of 2 held-back languages; centralized "
        "76.0 ± 1.4; seeds 0,1; pending: federated:prompt-encoder seed 2."
    )
    assert verdict.efficiency_cell() == (
        "SIB-200: **yes below about 42 examples per client**: catches up at 64 (sizes with "
        "both rows: 8); seed 0."
    )
    files.clear()
    assert verdict.unseen_cell() == verdict.efficiency_cell() == "not run yet."
