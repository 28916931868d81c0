"""The paper's claims, held or not, from the committed results files.

Reads benchmarks/results/{sib200,masakhanews,xnli}.json (paper_tables.py),
language_distance.json, unseen_languages.json and data_efficiency.json and rewrites the
verdict block of benchmarks/README.md and the summary table of the project README (each
between two comment lines), so that both always match the results they name. Reads
results only, instant:

    python benchmarks/verdict.py            # rewrite both blocks
    python benchmarks/verdict.py --check    # exit 1 if a block is out of date
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
PROJECT_README = HERE.parent / "README.md"
START, END = "<!-- verdict:start -->", "<!-- verdict:end -->"
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"
SUMMARY_ROWS = [
    ("federated prompt-encoder", "federated:prompt-encoder"),
    ("monolingual", "monolingual:prompt-encoder"),
    ("centralized", "centralized:prompt-encoder"),
    ("federated soft-prompt", "federated:soft-prompt"),
    ("federated LoRA", "federated:lora"),
    ("federated full", "federated:full"),
]
TABLES = {"sib200": "SIB-200", "masakhanews": "MasakhaNEWS", "xnli": "XNLI"}
FED, MONO = "federated:prompt-encoder", "monolingual:prompt-encoder"
CENT = "centralized:prompt-encoder"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _seed_label(seeds: list[int]) -> str:
    return "seed" + ("s " if len(seeds) > 1 else " ") + ",".join(map(str, seeds))


def _seed_list(rows: list[dict]) -> str:
    return _seed_label([r["seed"] for r in rows])


def _ms(vals: list[float]) -> str:
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{100 * statistics.mean(vals):.1f} ± {100 * sd:.1f}"


def _yes(held: bool) -> str:
    return "**yes**" if held else "**no**"


class Table:
    """One paper table's results (seed 0 rows and the seeds of the stability rows)."""

    def __init__(self, dataset: str, data: dict | None):
        self.dataset = dataset
        self.ok = bool(data and "recipe" in data)  # older files predate training to convergence
        self.data = data or {}
        self.rows = {f"{r['paradigm']}:{r['method']}": r for r in self.data.get("rows", [])}
        self.low = self.data.get("low_resource", [])
        self.stability = self.data.get("stability", {})

    def link(self) -> str:
        return f"[{self.dataset}.md](results/{self.dataset}.md)"

    def pending(self, *rows: str) -> str | None:
        missing = [r for r in rows if r not in self.rows]
        if not self.ok or missing:
            return f"pending ({', '.join(missing or rows)} not run yet)"
        return None

    def avg(self, row: str, key: str = "average") -> float:
        return self.rows[row]["averages"][key]

    def seeds(self, row: str) -> list[dict]:
        return self.stability.get(row, [])

    def gap(self, x: str) -> float:
        langs = lambda r: self.rows[r]["languages"]  # noqa: E731
        return langs(FED)[x]["accuracy"] - langs(MONO)[x]["accuracy"]

    # ---- one cell per claim -----------------------------------------------------------------
    def beats_local(self) -> str:
        if p := self.pending(FED, MONO):
            return p
        fed, mono = self.avg(FED), self.avg(MONO)
        langs = list(self.rows[FED]["languages"])
        ahead = sum(self.gap(x) > 0 for x in langs)
        cell = (
            f"{_yes(fed > mono)}: {_pct(fed)} vs {_pct(mono)} (seed 0); "
            f"ahead on {ahead} of {len(langs)} languages"
        )
        f_s, m_s = self.seeds(FED), self.seeds(MONO)
        if len(f_s) > 1 and len(m_s) > 1:
            cell += (
                f"; over seeds: {_ms([r['average'] for r in f_s])} ({_seed_list(f_s)}) vs "
                f"{_ms([r['average'] for r in m_s])} ({_seed_list(m_s)})"
            )
        return cell

    def low_resource(self) -> str:
        if p := self.pending(FED, MONO):
            return p
        key = "low_resource_average"
        fed, mono = self.avg(FED, key), self.avg(MONO, key)
        others = [x for x in self.rows[FED]["languages"] if x not in self.low]
        other_gap = statistics.mean(self.gap(x) for x in others) if others else None
        best = sorted(self.low, key=lambda x: -self.gap(x))[:3]
        cell = f"{_yes(fed > mono)}: low-resource {_pct(fed)} vs {_pct(mono)}"
        cell += f" ({100 * (fed - mono):+.1f})"
        if other_gap is not None:
            cell += f", other languages {100 * other_gap:+.1f}"
        return cell + "; largest: " + ", ".join(f"{x} {100 * self.gap(x):+.1f}" for x in best)

    def stabler(self) -> str:
        common = {r["seed"] for r in self.seeds(FED)} & {r["seed"] for r in self.seeds(MONO)}
        f_s, m_s = ([r for r in self.seeds(row) if r["seed"] in common] for row in (FED, MONO))
        if not self.ok or len(common) < 2:
            return "pending (seeds 1 and 2 not run yet)"

        def spread(runs: list[dict]) -> float:
            langs = runs[0]["languages"]
            return statistics.mean(
                statistics.stdev([r["languages"][x] for r in runs]) for x in langs
            )

        f, m = spread(f_s), spread(m_s)
        return (
            f"{_yes(f < m)}: per-language std over seeds "
            f"{','.join(str(r['seed']) for r in f_s)} {100 * f:.1f} vs {100 * m:.1f} points"
        )

    def communication(self) -> str:
        if p := self.pending(FED, "federated:full"):
            return p
        ratio = self.data["communication_ratio_prompt_vs_full"]
        up = lambda r: self.rows[r]["communication"]["bytes_up_per_client_round"] / 1e6  # noqa: E731
        return (
            f"{_yes(ratio < 0.01)}: {up(FED):.3f} vs {up('federated:full'):.1f} MB uploaded "
            f"per client and round, {100 * (1 - ratio):.2f}% less"
        )

    def centralized_on_top(self) -> str:
        feds = [r for r in self.rows if r.startswith("federated:")]
        if p := self.pending(CENT, FED):
            return p
        best = max(feds, key=self.avg)
        held = self.avg(CENT) >= self.avg(best)
        cell = f"{_yes(held)}: {_pct(self.avg(CENT))} vs best federated "
        cell += f"{best.split(':')[1]} {_pct(self.avg(best))}"
        return cell + (f" ({len(feds)} of 4 federated rows run)" if len(feds) < 4 else "")

    def lora_strongest(self) -> str:
        if p := self.pending("federated:lora"):
            return p
        others = {
            r: self.avg(r)
            for r in self.rows
            if r.startswith("federated:") and r != "federated:lora"
        }
        lora = self.avg("federated:lora")
        cell = f"{_yes(all(lora > v for v in others.values()))}: {_pct(lora)}; " + ", ".join(
            f"{r.split(':')[1]} {_pct(v)}" for r, v in others.items()
        )
        return cell + (f" ({len(others) + 1} of 4 federated rows run)" if len(others) < 3 else "")


def distance_cell(data: dict | None, dataset: str) -> str:
    table = (data or {}).get("tables", {}).get(dataset)
    if not table:
        return "pending (`python benchmarks/language_distance.py`)"
    corr = table["correlations"]
    eng, near = corr["to_english"]["mean"], corr["nearest_client"]["mean"]
    held = eng["rho"] > 0 and eng["p"] < 0.05
    seeds = table["seeds"][FED]
    return (
        f"{_yes(held)}: Spearman rho of the gain with the mean URIEL+ distance to English "
        f"{eng['rho']:+.2f} (p {eng['p']:.2f}, n {eng['n']}), to the nearest other client "
        f"{near['rho']:+.2f} (p {near['p']:.2f}, n {near['n']}); seeds {','.join(map(str, seeds))}"
    )


def _pending(data: dict) -> str:
    return f"; pending: {', '.join(map(str, data['pending']))}" if data.get("pending") else ""


def unseen_cell() -> str:
    """Federated vs the best monolingual transfer chosen on dev, on the held-back languages,
    as unseen_languages.py compared them (its results file's `verdicts`)."""
    data = _load("unseen_languages") or {}
    mono = data.get("verdicts", {}).get("federated_vs_mono_dev")
    if not mono:
        pending = ", ".join(data.get("pending", []))
        return f"pending: {pending}." if pending else "not run yet."
    fed, best = mono["averages"]["federated"], mono["averages"]["mono_dev"]
    fmt = _ms if len(fed) > 1 else (lambda v: _pct(v[0]))
    cent = data["verdicts"].get("federated_vs_centralized")
    seeds = mono["seeds"]
    return (
        f"{_yes(all(d > 0 for d in mono['differences']))}: held-back average {fmt(fed)} vs "
        f"{fmt(best)} for the best monolingual transfer chosen on dev "
        f"({statistics.mean(mono['differences']):+.1f}), federated ahead on {mono['ahead']} "
        f"of {mono['languages']} held-back languages"
        + (
            f"; centralized {fmt(cent['averages']['centralized'])}"
            if cent and cent["seeds"] == seeds
            else ""
        )
        + f"; {_seed_label(seeds)}{_pending(data)}."
    )


def efficiency_cell() -> str:
    """Per dataset, where the monolingual line catches up with the federated one."""
    data = _load("data_efficiency")
    if not data or not data.get("points"):
        return "not run yet."
    parts = []
    for dataset, sizes in data["points"].items():
        cross = data["crossings"][dataset]["average"]
        done = [s for s, rows in sizes.items() if FED in rows and MONO in rows]
        held = {
            "all": "**yes**: ",
            "below": f"**yes below about {cross.get('at') or 0:.0f} examples per client**: ",
            "none": "**no**: ",
        }.get(cross.get("ahead"), "")
        parts.append(
            f"{TABLES.get(dataset, dataset)}: {held}{cross['text']} (sizes with both rows: "
            f"{', '.join(done) or 'none'})"
        )
    return "; ".join(parts) + f"; {_seed_label(data.get('seeds', [0]))}{_pending(data)}."


def render() -> str:
    tables = {d: Table(d, _load(d)) for d in TABLES}
    claims = [
        ("federated prompt tuning beats local monolingual tuning on average", Table.beats_local),
        ("... and on the low-resource languages (paper: up to +6.9 points)", Table.low_resource),
        ("federated prompt tuning is stabler over seeds", Table.stabler),
        ("> 99% less communication than federated full fine-tuning", Table.communication),
        ("centralized training is the upper reference", Table.centralized_on_top),
        ("federated LoRA is strongest (paper: 81.0 on MasakhaNEWS)", Table.lora_strongest),
    ]
    head = "| claim (paper) | " + " | ".join(f"{TABLES[d]} ({t.link()})" for d, t in tables.items())
    lines = [head + " |", "|---" * (len(tables) + 1) + "|"]
    for claim, cell in claims:
        lines.append(f"| {claim} | " + " | ".join(cell(t) for t in tables.values()) + " |")
    distance = _load("language_distance")
    lines.append(
        "| the gain is largest far from the high-resource languages "
        "([language_distance.md](results/language_distance.md)) | "
        + " | ".join(distance_cell(distance, d) for d in tables)
        + " |"
    )
    extra = [
        "- federated prompt tuning generalizes to languages no client holds "
        f"([unseen_languages.md](results/unseen_languages.md)): {unseen_cell()}",
        "- federated prompt tuning needs fewer examples per client "
        f"([data_efficiency.md](results/data_efficiency.md)): {efficiency_cell()}",
    ]
    return "\n".join([START, *lines, "", *extra, END])


def summary() -> str:
    """The project README's table: average test accuracy per dataset and row (seed 0, with
    mean ± std where 3 seeds ran), low-resource average of the two headline rows."""
    lines = [
        SUMMARY_START,
        "| dataset | " + " | ".join(label for label, _ in SUMMARY_ROWS) + " | upload per "
        "client-round, prompt vs full |",
        "|---|" + "---:|" * len(SUMMARY_ROWS) + "---|",
    ]
    for dataset, name in TABLES.items():
        t = Table(dataset, _load(dataset))
        cells = []
        for _, row in SUMMARY_ROWS:
            if not t.ok or row not in t.rows:
                cells.append("pending")
                continue
            cell = _pct(t.avg(row))
            runs = t.seeds(row)
            if len(runs) > 1:
                cell += f" ({_ms([r['average'] for r in runs])}, {len(runs)} seeds)"
            if row in (FED, MONO):
                cell += f"; low-res {_pct(t.avg(row, 'low_resource_average'))}"
            cells.append(cell)
        comm = t.communication()
        comm = comm.split(": ", 1)[1] if comm.startswith("**") else "pending"
        n = len(t.rows[FED]["languages"]) if t.ok and FED in t.rows else None
        label = f"[{name}](benchmarks/results/{dataset}.md)" + (f", {n} languages" if n else "")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {comm} |")
    return "\n".join([*lines, SUMMARY_END])


def _replace(path: Path, start: str, end: str, block: str) -> tuple[str, str]:
    """(current text of `path`, text with the block between `start` and `end` replaced)."""
    text = path.read_text()
    if start not in text or end not in text:
        sys.exit(f"{path} has no {start} ... {end} block")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return text, before + block + after


def update(check: bool = False) -> list[str]:
    """Rewrite both blocks from the results files (`check`: only compare); the files whose
    block was (or, checking, would be) out of date."""
    blocks = [
        (README, START, END, render()),
        (PROJECT_README, SUMMARY_START, SUMMARY_END, summary()),
    ]
    stale = []
    for path, start, end, block in blocks:
        text, new = _replace(path, start, end, block)
        if new == text:
            continue
        stale.append(str(path.relative_to(HERE.parent)))
        if not check:
            tmp = path.with_suffix(".md.tmp")
            tmp.write_text(new)
            tmp.replace(path)
    return stale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    args = ap.parse_args()
    stale = update(check=args.check)
    if args.check and stale:
        sys.exit(f"stale verdict blocks in {', '.join(stale)}: run python benchmarks/verdict.py")
    print(f"rewrote {', '.join(stale)}" if stale else "verdict blocks are current")


if __name__ == "__main__":
    main()
