"""The paper's data-efficiency claim: test accuracy against training examples per client
for the federated, monolingual and centralized prompt encoder, on SIB-200 and MasakhaNEWS.

Every point is a `fedlingua compare` row on the dev-chosen recipe of paper_tables.py
(RECIPE, row_overrides, the learning rate from the dev sweep): at most ROUNDS rounds of
LOCAL_STEPS steps (batch BATCH) per client, early stopping on dev, test scored once at
the best dev round; only `data.max_train_per_client` changes along a curve. The results
give, per dataset, where the federated and monolingual lines cross: the first size at
which monolingual catches up.

Usage:  .venv/bin/python benchmarks/data_efficiency.py [--dataset sib200] [--sizes 8,16]
            [--rows monolingual:prompt-encoder]
        .venv/bin/python benchmarks/data_efficiency.py --report   (finished rows only)
Sizes run coarse to fine (8, 32, 128, all, then 16 and 64), the three rows of a size
before the next size, so a benchmark cut short still spans the whole range with whole
points. Rows are run directories
(benchmarks/runs/data_efficiency/<dataset>/n<size>/<row>): finished rows are read back,
an interrupted row resumes; two processes may run disjoint datasets, sizes or rows. The
results (results/data_efficiency.md/.json/.png) are rewritten after every size from all
finished rows and list the pending ones; a row whose run directory is not on this machine
(a fresh clone) is read back from the results file itself, made with the same settings.
A row run with other overrides than today's recipe gives it (a dev choice changed since)
is pending, run or recorded; `--set-aside-stale` moves such run directories aside and
runs the rows again.
`--set key=value` adds an override to every row (smoke runs: `--set model.name=tiny
--set federation.rounds=2` with `--runs` and `--results` under /tmp).
Needs ../shared/data (or $FEDLINGUA_DATA_ROOT).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from fedlingua.compare import compare, stored_row_matches
from fedlingua.config import RunConfig
from fedlingua.data import default_data_root, load_dataset
from fedlingua.io import write_json, write_text
from fedlingua.report import RunDir
from fedlingua.runtime import environment

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import verdict  # noqa: E402
from paper_tables import (  # noqa: E402
    BATCH,
    BUDGETS,
    LOCAL_STEPS,
    PATIENCE,
    RECIPE,
    ROUNDS,
    chosen_lrs,
    chosen_recipe,
    low_resource,
    monolingual_lr,
    recipe_note,
    row_overrides,
    set_aside_stale,
)
from recipe_sweep import DATASETS as SWEEP_DATASETS  # noqa: E402

NAME = "data_efficiency"
RUNS = HERE / "runs" / NAME
RESULTS = HERE / "results"
FEDERATED, MONOLINGUAL, CENTRALIZED = ROWS = [
    "federated:prompt-encoder",
    "monolingual:prompt-encoder",
    "centralized:prompt-encoder",
]
ALL = "all"  # each client's whole training split
SIZES = {
    "sib200": ["8", "16", "32", "64", "128"],
    "masakhanews": ["8", "16", "32", "64", "128", ALL],
}
MASAKHANEWS_LANGUAGES = 6
# The curve is the global federated model's; personalization (extra local steps after
# training, paper_tables' "personalized" column) is left out to keep the compute budget.
PERSONALIZE = 0

DATA_NOTES = {
    "sib200": "the 8 SIB-200 languages of the dev sweep (recipe_sweep.py), 3 high-resource "
    "and 5 low-resource; 48 of 99 dev sentences per language (stratified), all 204 test "
    "sentences, 64 text tokens at most (the 20 virtual tokens come on top); texts are "
    "parallel across languages (row i is the same sentence in every language, each client "
    "drawing its own rows).",
    "masakhanews": "6 of the 16 languages, chosen by rule: sorted by upstream training size "
    "(then code), the ranks evenly spaced from the smallest to the largest (0, 3, 6, 9, 12, "
    "15); 48 dev and at most 200 test articles per language (stratified), headline + body "
    "truncated to 96 text tokens (the 20 virtual tokens come on top). Label sets differ by "
    "language.",
}
STEP_NOTE = (
    "A local step is one optimizer step on one batch of at most {batch} of the client's "
    "examples. A client with fewer examples than the batch (8) takes all of them as its "
    "batch at every step (reshuffled), so its {steps} local steps per round are {steps} "
    "full-batch steps on the same 8 examples, each half the compute of a 16-example step; "
    "at 16 each step is one pass, at 32 a round is 2 passes, at 64 one, at 128 half of one. "
    "Every round costs the same steps whatever the size: the curves vary the data "
    "available, not the compute (at `all` the largest MasakhaNEWS clients see less than one "
    "pass in {rounds} rounds). Each size's sample is its own stratified draw (seed 0, every "
    "class present at every size), not a superset of the smaller one."
)


def spread(sizes: dict[str, int], k: int) -> list[str]:
    """k languages at evenly spaced ranks of training size (then code), both ends kept."""
    order = sorted(sizes, key=lambda x: (sizes[x], x))
    if k >= len(order):
        return order
    return [order[round(i * (len(order) - 1) / (k - 1))] for i in range(k)]


def run_order(sizes: list[str]) -> list[str]:
    """Every other size from the smallest, and the largest, first; then the ones between."""
    first = sizes[::2] + ([sizes[-1]] if len(sizes) % 2 == 0 else [])
    return first + [s for s in sizes if s not in first]


def dataset_languages(dataset: str) -> tuple[list[str], list[str], dict[str, int]]:
    """The client languages, the low-resource ones among them, and upstream train sizes."""
    ds = load_dataset(dataset)
    upstream = {x: len(ds.split(x, "train")) for x in ds.languages()}
    if dataset == "sib200":
        langs = list(SWEEP_DATASETS["sib200"]["overrides"]["data.languages"])
    else:
        langs = spread(upstream, MASAKHANEWS_LANGUAGES)
    low = [x for x in low_resource(dataset, langs, getattr(ds, "groups", {}) or {}) if x in langs]
    return langs, low, {x: upstream[x] for x in langs}


def size_config(
    dataset: str, size: str, langs: list[str], low: list[str], runs: Path, extra: list[str]
) -> RunConfig:
    """One size's comparison, built as paper_tables.table_config builds a table's."""
    lrs, _ = chosen_lrs()
    raw = RECIPE | BUDGETS[dataset]["overrides"]
    raw |= {
        "data.source": dataset,
        "data.languages": langs,
        "data.low_resource": low,
        "data.max_train_per_client": None if size == ALL else int(size),
        "seed": 0,
        "output_dir": str(runs / dataset),
        "name": f"n{size}",
    }
    items = harness.override_items({k: v for k, v in raw.items() if v is not None})
    cfg = RunConfig.load(None, items + extra)
    overrides = row_overrides(
        dataset, len(langs), {"prompt-encoder": lrs["prompt-encoder"]}, chosen_recipe(dataset)
    )
    overrides[FEDERATED]["evaluation.personalize"] = PERSONALIZE
    cfg.compare.overrides = {row: harness.override_items(o) for row, o in overrides.items()}
    return cfg


def finished(runs: Path, dataset: str, size: str, row: str) -> dict | None:
    return RunDir(runs / dataset / f"n{size}" / row.replace(":", "-")).results()


def collect(
    runs: Path,
    datasets: list[str],
    recorded: dict | None = None,
    current: Callable[[str, str], RunConfig] | None = None,
) -> tuple[dict, list[str]]:
    """Finished rows, table[dataset][size][row], and the pending ones by name. A row without
    a run directory here is taken from `recorded` (the results file as last written, see
    harness.recorded) when that holds it, marked `"recorded": True`. With `current`
    ((dataset, size) -> that size's comparison config today), a row run or recorded with
    other overrides than today's (a dev choice changed since) is pending, named as run
    with other settings; a point recorded before points kept their overrides is taken as
    run with today's."""
    points = (recorded or {}).get("points", {})
    table: dict[str, dict[str, dict[str, dict]]] = {}
    pending = []
    for dataset in datasets:
        for size in SIZES[dataset]:
            cfg = current(dataset, size) if current else None
            for row in ROWS:
                want = None if cfg is None else cfg.compare.overrides.get(row, [])
                r = finished(runs, dataset, size, row)
                stale = (
                    r is not None
                    and cfg is not None
                    and not stored_row_matches(cfg, *row.split(":"))
                )
                if stale:
                    r = None
                point = points.get(dataset, {}).get(size, {}).get(row)
                if r is None and point is not None and not stale:
                    if want is None or point.get("overrides", want) == want:
                        r = from_point(point)
                    else:
                        stale = True
                name = f"{dataset} n={size} {row.split(':')[0]}"
                if r is None:
                    pending.append(name + harness.OTHER_SETTINGS * stale)
                else:
                    if want is not None:
                        r["overrides"] = want
                    table.setdefault(dataset, {}).setdefault(size, {})[row] = r
    return table, pending


KEEP = ("averages", "selected_round", "rounds_run", "stopped_early", "time", "model", "overrides")


def to_point(r: dict) -> dict:
    """What the results file keeps of a row: the figures the report reads, nothing more."""
    langs = r["languages"]
    return {k: r.get(k) for k in KEEP} | {
        "languages": {x: v["accuracy"] for x, v in langs.items()},
        "train_examples": {x: v["train_examples"] for x, v in langs.items()},
    }


def from_point(p: dict) -> dict:
    """A row as the report reads it, rebuilt from its point in the results file."""
    langs = {
        x: {"accuracy": acc, "train_examples": p["train_examples"][x]}
        for x, acc in p["languages"].items()
    }
    return {k: p.get(k) for k in KEEP} | {"languages": langs, "recorded": True}


def examples_per_client(size: str, rows: dict[str, dict]) -> float:
    """The x of a size: its number, or for `all` the mean client training split."""
    if size != ALL:
        return float(size)
    r = next(iter(rows.values()))
    return statistics.mean(s["train_examples"] for s in r["languages"].values())


def crossing(points: list[tuple[str, float, float, float]]) -> dict:
    """Where monolingual catches up with federated along (label, x, federated, monolingual),
    x ascending: the first size with monolingual >= federated after federated led, and the
    crossing interpolated linearly in log2(x) between it and the size before. `ahead` says
    where federated leads: at every size ("all"), below the crossing ("below"), nowhere
    ("none"), or unknown (None: no size has both rows)."""
    if not points:
        return {"size": None, "at": None, "ahead": None, "text": "no size has both rows finished"}
    label, _, fed, mono = points[0]
    if mono >= fed:
        return {
            "size": None,
            "at": None,
            "ahead": "none",
            "text": f"no crossing in the range: monolingual is level or ahead from the "
            f"smallest size ({label}: {100 * (fed - mono):+.1f} points federated minus "
            "monolingual)",
        }
    for (_, x0, f0, m0), (label, x1, f1, m1) in zip(points, points[1:], strict=False):
        if m1 >= f1:
            g0, g1 = f0 - m0, f1 - m1
            at = 2 ** (math.log2(x0) + g0 / (g0 - g1) * (math.log2(x1) - math.log2(x0)))
            return {
                "size": label,
                "at": at,
                "ahead": "below",
                "text": f"monolingual catches up at {label} examples per client "
                f"({100 * g1:+.1f} points federated minus monolingual; the lines cross near "
                f"{at:.0f}, interpolated on the log2 axis)",
            }
    label, _, fed, mono = points[-1]
    return {
        "size": None,
        "at": None,
        "ahead": "all",
        "text": f"no crossing in the range: federated ahead at every size "
        f"({100 * (fed - mono):+.1f} points at {label})",
    }


def curve(sizes: dict[str, dict], row: str, key: str) -> list[tuple[str, float, float]]:
    """(size, x, accuracy) of one row's `averages[key]` over the sizes it finished."""
    return [
        (size, examples_per_client(size, rows), rows[row]["averages"][key])
        for size, rows in sizes.items()
        if row in rows and rows[row]["averages"].get(key) is not None
    ]


def crossings(sizes: dict[str, dict]) -> dict[str, dict]:
    """Federated vs monolingual on the average and the low-resource average."""
    out = {}
    for key in ("average", "low_resource_average"):
        mono = {s: acc for s, _, acc in curve(sizes, MONOLINGUAL, key)}
        points = [(s, x, acc, mono[s]) for s, x, acc in curve(sizes, FEDERATED, key) if s in mono]
        out[key] = crossing(points)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _rounds(r: dict) -> str:
    """Selected round / rounds run (a monolingual row: the range of its languages' rounds)."""
    sel = r.get("selected_round")
    if isinstance(sel, dict):  # one round per language (the same for a shared model)
        lo, hi = min(sel.values(), default=None), max(sel.values(), default=None)
        sel = lo if lo == hi else f"{lo}-{hi}"
    return f"{sel} / {r['rounds_run']}"


def dataset_lines(dataset: str, sizes: dict[str, dict], meta: dict) -> list[str]:
    """One dataset's section: accuracy per size and row, the crossing, rounds and time."""
    langs, low = meta["languages"], meta["low_resource"]
    lines = [
        f"## {dataset} ({len(langs)} languages: {', '.join(langs)}; low-resource: "
        f"{', '.join(low)})",
        "",
        f"{DATA_NOTES[dataset]}",
        "",
        "| examples per client | federated avg | monolingual avg | centralized avg | "
        "federated - monolingual | federated low-res | monolingual low-res | "
        "centralized low-res |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, rows in sizes.items():
        acc = {k: rows[k]["averages"] if k in rows else {} for k in ROWS}
        gap = None
        if acc[FEDERATED] and acc[MONOLINGUAL]:
            gap = acc[FEDERATED]["average"] - acc[MONOLINGUAL]["average"]
        cells = [_pct(acc[k].get("average")) for k in ROWS]
        cells += ["-" if gap is None else f"{100 * gap:+.1f}"]
        cells += [_pct(acc[k].get("low_resource_average")) for k in ROWS]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    cross = crossings(sizes)
    lines += [
        "",
        f"Crossing (average): {cross['average']['text']}.",
        f"Crossing (low-resource average): {cross['low_resource_average']['text']}.",
    ]
    if ALL in sizes:
        r = next(iter(sizes[ALL].values()))
        per = ", ".join(f"{x} {s['train_examples']}" for x, s in r["languages"].items())
        lines += ["", f"`all` = each client's whole training split: {per}."]
    lines += [
        "",
        "Selected round / rounds run and wall time (min) per row:",
        "",
        "| examples per client | federated | monolingual | centralized |",
        "|---|---:|---:|---:|",
    ]
    for size, rows in sizes.items():
        cells = [
            f"{_rounds(rows[k])}, {rows[k]['time']['wall_s'] / 60:.1f}" if k in rows else "-"
            for k in ROWS
        ]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return lines + [""]


def header(table: dict, pending: list[str], extra: list[str]) -> list[str]:
    """Title, command, budget, recipe and what a step is."""
    rows = [r for sizes in table.values() for by_row in sizes.values() for r in by_row.values()]
    wall = {
        d: sum(r["time"]["wall_s"] for s in v.values() for r in s.values())
        for d, v in table.items()
    }
    env = environment()
    lrs, _ = chosen_lrs()
    model = rows[0]["model"] if rows else RECIPE["model.name"]
    lines = [
        f"# Data efficiency: test accuracy against training examples per client ({model})",
        "",
        f"Command: `{command(extra)}` (every dataset, size and row; "
        "split over processes with `--dataset`, `--sizes`, `--rows`; `--report` rewrites "
        f"this file from the finished rows). **Seed 0 only**: one run per point, no spread "
        "over seeds.",
        "",
        f"**Budget:** planned at about 4 h of one core for the whole benchmark; finished rows "
        f"took {sum(wall.values()) / 3600:.2f} h of one core ("
        + ", ".join(f"{d} {w / 3600:.2f} h" for d, w in wall.items())
        + f"), one torch thread per run ({env['cpu_count']} cores shared with other "
        f"benchmarks, torch {env['packages']['torch']}). Every row trains at most {ROUNDS} "
        f"rounds of {LOCAL_STEPS} local steps (batch {BATCH}) per client, is scored on dev "
        f"after every round, stops after {PATIENCE} rounds without a better dev average and "
        "is scored on test once, at its best dev round (each monolingual model at its own).",
        "",
        "**Recipe (paper_tables.py, chosen on dev):** federated, learning rate "
        f"{lrs.get('prompt-encoder', 'default')} (SIB-200 dev sweep) and per dataset "
        + "; ".join(f"{d}: {recipe_note(d, chosen_recipe(d))}" for d in SIZES)
        + ". Monolingual: plain cross-entropy, optimizer state kept across rounds, learning "
        "rate "
        + ", ".join(f"{monolingual_lr(d):g} on {d}" for d in SIZES)
        + "; centralized: one model on the pooled clients' data, the whole federation's "
        "local steps per round, plain cross-entropy. No personalization: the federated line "
        "is the global model.",
        "",
        STEP_NOTE.format(batch=BATCH, steps=LOCAL_STEPS, rounds=ROUNDS),
        "",
    ]
    if pending:
        lines += [f"**Pending (not yet run):** {', '.join(pending)}.", ""]
    return lines


def command(extra: list[str]) -> str:
    return "python benchmarks/data_efficiency.py" + "".join(f" --set {x}" for x in extra)


def write_results(
    table: dict, pending: list[str], meta: dict, results: Path, extra: list[str]
) -> None:
    """data_efficiency.md, .json and .png from the finished rows."""
    lines = header(table, pending, extra)
    for dataset, sizes in table.items():
        lines += dataset_lines(dataset, sizes, meta[dataset])
    results.mkdir(parents=True, exist_ok=True)
    if table:
        plot(table, results / f"{NAME}.png")
        lines += [f"![accuracy against examples per client]({NAME}.png)", ""]
    write_text(results / f"{NAME}.md", "\n".join(lines) + "\n")
    points = {
        d: {s: {row: to_point(r) for row, r in rows.items()} for s, rows in sizes.items()}
        for d, sizes in table.items()
    }
    write_json(
        results / f"{NAME}.json",
        {
            "command": command(extra),
            "seeds": [0],
            "recipe": RECIPE,
            "personalize": PERSONALIZE,
            "sizes": SIZES,
            "datasets": {d: meta[d] | {"budget": BUDGETS[d]} for d in meta},
            "pending": pending,
            "points": points,
            "crossings": {d: crossings(sizes) for d, sizes in table.items()},
            "environment": environment(),
        },
    )
    if results == RESULTS:
        verdict.update()  # the READMEs' claim tables follow the results files


def plot(table: dict, path: Path) -> None:
    """Per dataset: average and low-resource average against examples per client (log2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(table), 2, figsize=(11, 4 * len(table)), squeeze=False)
    for (dataset, sizes), pair in zip(table.items(), axes, strict=True):
        cross = crossings(sizes)
        for ax, key in zip(pair, ("average", "low_resource_average"), strict=True):
            panel(ax, sizes, key, cross[key]["at"])
            ax.set_title(f"{dataset}: {key.replace('_', ' ')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def panel(ax, sizes: dict[str, dict], key: str, crossing_at: float | None) -> None:
    """One row per line, sizes as log2 ticks, the federated/monolingual crossing dotted."""
    for row in ROWS:
        pts = curve(sizes, row, key)
        if pts:
            xs, ys = [x for _, x, _ in pts], [100 * a for *_, a in pts]
            ax.plot(xs, ys, marker="o", label=row.split(":")[0])
    if crossing_at is not None:
        ax.axvline(crossing_at, color="grey", linestyle=":", label="monolingual catches up")
    ticks = {s: examples_per_client(s, rows) for s, rows in sizes.items()}
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ticks.values()))
    ax.set_xticklabels([f"all\n(mean {x:.0f})" if s == ALL else s for s, x in ticks.items()])
    ax.minorticks_off()
    ax.set_xlabel("training examples per client (log2)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=",".join(SIZES), help="datasets to run, in order")
    ap.add_argument("--sizes", default=None, help="examples per client to run, e.g. 8,16,all")
    ap.add_argument("--rows", default=",".join(ROWS), help="paradigm:method rows to run")
    ap.add_argument("--report", action="store_true", help="write results from finished rows")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override on every row (smoke runs, e.g. model.name=tiny)",
    )
    ap.add_argument(
        "--set-aside-stale",
        action="store_true",
        help="move rows run with other settings (a dev choice changed since) to "
        "<row>.superseded-<n> and run them again",
    )
    ap.add_argument("--runs", type=Path, default=RUNS, help="run directories")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    args = ap.parse_args()
    args.dataset = args.dataset.split(",")
    known = {s for sizes in SIZES.values() for s in sizes}
    bad = [d for d in args.dataset if d not in SIZES] + [
        r for r in args.rows.split(",") if r not in ROWS
    ]
    bad += [s for s in (args.sizes or "").split(",") if s and s not in known]
    if bad:
        ap.error(f"unknown {bad}: datasets {list(SIZES)}, rows {ROWS}, sizes {sorted(known)}")
    return args


def main() -> None:
    args = parse_args()
    if default_data_root() is None:
        sys.exit("needs ../shared/data or $FEDLINGUA_DATA_ROOT")
    harness.one_thread_per_run()
    meta = {}
    for dataset in SIZES:
        langs, low, upstream = dataset_languages(dataset)
        meta[dataset] = {"languages": langs, "low_resource": low, "upstream_train": upstream}
    # The results file as last written supplies the rows whose run directories are absent.
    record = harness.recorded(
        args.results / f"{NAME}.json",
        command=command(args.set),
        recipe=RECIPE,
        personalize=PERSONALIZE,
        datasets={d: meta[d] | {"budget": BUDGETS[d]} for d in meta},
    )
    wanted = args.rows.split(",")
    if not args.report and "prompt-encoder" not in chosen_lrs()[0]:
        sys.exit("needs the prompt encoder's learning rate: run benchmarks/recipe_sweep.py sib200")
    if not args.report:
        current = current_config(args, meta)
        for dataset in args.dataset:
            sizes = SIZES[dataset] if args.sizes is None else args.sizes.split(",")
            for size in [s for s in run_order(SIZES[dataset]) if s in sizes]:
                cfg = current(dataset, size)
                rows = rows_to_run(args.runs, dataset, size, wanted, record, current)
                if kept := [r for r in wanted if r not in rows]:
                    print(f"{dataset} n={size}: {', '.join(kept)} kept in the results file")
                if not rows:
                    continue
                cfg.compare.overrides = {
                    k: v for k, v in cfg.compare.overrides.items() if k in rows
                }
                if args.set_aside_stale:
                    set_aside_stale(cfg, rows)
                compare(cfg, rows, log=lambda line: print(line, flush=True))
                report(args, meta, record)
    report(args, meta, record)


def rows_to_run(
    runs: Path,
    dataset: str,
    size: str,
    wanted: list[str],
    record: dict,
    current: Callable[[str, str], RunConfig],
) -> list[str]:
    """The rows a sitting runs at one size: all of `wanted` but those the results file
    keeps with today's settings and that have no run directory here (a run directory here
    is resumed or read back by `compare`)."""
    table, _ = collect(runs, [dataset], record, current)
    done = table.get(dataset, {}).get(size, {})
    return [r for r in wanted if not done.get(r, {}).get("recorded")]


def current_config(args: argparse.Namespace, meta: dict) -> Callable[[str, str], RunConfig]:
    """(dataset, size) -> that size's comparison config today."""

    def current(dataset: str, size: str) -> RunConfig:
        m = meta[dataset]
        return size_config(dataset, size, m["languages"], m["low_resource"], args.runs, args.set)

    return current


def report(args: argparse.Namespace, meta: dict, record: dict) -> None:
    table, pending = collect(args.runs, list(SIZES), record, current_config(args, meta))
    kept = sum(
        r.get("recorded", False) for d in table.values() for s in d.values() for r in s.values()
    )
    if kept:
        print(f"{kept} finished rows read back from {args.results / NAME}.json (no run directory)")
    write_results(table, pending, meta, args.results, args.set)


if __name__ == "__main__":
    main()
