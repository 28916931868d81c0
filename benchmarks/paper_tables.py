"""Reproduce the paper's comparison tables on real data, every row trained to convergence.

For one dataset (sib200, masakhanews, xnli) this runs `fedlingua compare` (the same code
as the CLI) with rows centralized, monolingual, federated prompt-encoder, soft-prompt,
LoRA and full fine-tuning, on the same clients, data and seed; then the monolingual and
federated prompt-encoder rows with two more seeds. Every row trains at most ROUNDS rounds
of LOCAL_STEPS steps, is scored on dev after every round, stops after PATIENCE rounds
without a better dev accuracy, and is reported on test once, at its best dev round.

The recipe is chosen on dev (benchmarks/recipe_sweep.py): each method's learning rate
on SIB-200 dev, and the federated strategy and logit adjustment on the dataset's own dev
sweep where it has one (TABLE_SWEEPS); no setting is read from a test score.

Usage:  .venv/bin/python benchmarks/paper_tables.py sib200 [--seeds 0,1,2] [--rows ...]
        .venv/bin/python benchmarks/paper_tables.py sib200 --report   (finished rows only)
`--seeds` chooses what a sitting runs; the results always cover the table's SEEDS (the
first for every row, all of them for the stability rows), whichever seeds ran.
A row whose settings a later dev choice changed counts as pending; `--set-aside-stale`
moves its old run aside and runs it again.
Rows are run directories (benchmarks/runs/paper_tables/<dataset>/seed<k>/<row>): an
interrupted table continues where it stopped, and two processes may run disjoint rows
of the same table at once (one per core). The results file lists rows still pending and
keeps, per row and seed, everything the report reads ("runs"), with the row's settings: a
later sitting without those run directories (a fresh clone) reads finished rows back from
it and runs only the others. A file written before it kept whole rows is read the same
way (`legacy_row`); its later seeds lack their run time and per-language personalized
scores, which a report rewritten from them shows as missing.
Needs ../shared/data (or $FEDLINGUA_DATA_ROOT).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from fedlingua.compare import compare, stored_row_matches
from fedlingua.config import RunConfig
from fedlingua.data import default_data_root, load_dataset
from fedlingua.io import write_json, write_text
from fedlingua.methods import REGISTRY
from fedlingua.report import RunDir
from fedlingua.runtime import environment

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import verdict  # noqa: E402
from recipe_sweep import RESULTS as SWEEP_RESULTS  # noqa: E402
from recipe_sweep import TABLE_SWEEPS, method_choice, table_recipe  # noqa: E402

RESULTS = HERE / "results"
RUNS = HERE / "runs" / "paper_tables"
ROWS = [
    "centralized:prompt-encoder",
    "monolingual:prompt-encoder",
    "federated:prompt-encoder",
    "federated:soft-prompt",
    "federated:lora",
    "federated:full",
]
STABILITY_ROWS = ["monolingual:prompt-encoder", "federated:prompt-encoder"]
SEEDS = [0, 1, 2]  # the first runs every row; the others the stability rows
ROUNDS, LOCAL_STEPS, BATCH, PATIENCE, PERSONALIZE = 20, 4, 16, 4, 8
SIB_HIGH = [
    "eng_Latn",
    "fra_Latn",
    "deu_Latn",
    "spa_Latn",
    "rus_Cyrl",
    "zho_Hans",
    "arb_Arab",
    "hin_Deva",
]

# Every row of every table: the sweep's compute budget and the dev-chosen recipe.
RECIPE = {
    "model.name": "e5-small",
    "model.precision": "fp32-onednn",
    "train.batch_size": BATCH,
    "train.local_steps": LOCAL_STEPS,
    "federation.rounds": ROUNDS,
    "federation.strategy": "fedadam",
    "train.logit_adjustment": 0.5,
    "evaluation.select_on_dev": True,
    "evaluation.patience": PATIENCE,
    "threads": 1,
    "progress": False,
}


def row_overrides(
    dataset: str, n_clients: int, lrs: dict[str, float], recipe: dict[str, dict]
) -> dict[str, dict]:
    """Each row's own settings on top of RECIPE, as in the sweep that chose them; `recipe`
    (`chosen_recipe`) holds the dataset's own dev choices, where it has a sweep."""
    rows = {
        # the best monolingual candidate on SIB-200 dev (mono-adamw-keep): plain
        # cross-entropy (a local model fits its own label prior), optimizer state kept
        "monolingual:prompt-encoder": {
            "train.logit_adjustment": 0.0,
            "train.keep_optimizer_state": True,
        }
        | recipe["monolingual"]["settings"],
        # the whole federation's examples per round (every client's local steps), plain loss
        "centralized:prompt-encoder": {
            "train.logit_adjustment": 0.0,
            "train.local_steps": LOCAL_STEPS * n_clients,
        },
        "federated:prompt-encoder": {"evaluation.personalize": PERSONALIZE},
    }
    federated = dict(recipe["federated"]["settings"])
    step = federated.pop("server_step_x_lr", None)
    for method, lr in lrs.items():
        row = rows.setdefault(f"federated:{method}", {})
        row |= {"train.lr": lr} | federated
        if step is not None:
            row["federation.server_lr"] = step * lr
    return rows


BUDGETS: dict[str, dict] = {
    "sib200": {
        "overrides": {
            "data.max_train_per_client": 48,
            "data.max_dev_per_language": 48,
            "data.max_length": 64,
        },
        "note": "all 30 local languages as clients; 48 training sentences per client "
        "(stratified: the paper's scarce-data regime), 48 of 99 dev sentences per language "
        "(stratified), all 204 test sentences per language; texts are parallel across "
        "languages (row i is the same sentence in every language), so federation and "
        "centralized training see translations of the same sentences: a cross-lingual "
        "signal local training never gets.",
    },
    "masakhanews": {
        "overrides": {
            "data.max_train_per_client": 48,
            "data.max_dev_per_language": 48,
            "data.max_eval_per_language": 200,
            "data.max_length": 96,
        },
        "note": "all 16 languages as clients; 48 training articles per client (stratified), "
        "so every client trains on the same amount whatever its upstream size; 48 dev and "
        "200 test articles per language (stratified), headline + body truncated to 96 "
        "text tokens (the prompt methods' 20 virtual tokens come on top).",
    },
    "xnli": {
        "overrides": {
            "data.max_train_per_client": 48,
            "data.max_dev_per_language": 48,
            "data.max_eval_per_language": 500,
            "data.max_length": 80,
        },
        "note": "15 languages as clients; XNLI has no training split: the loader splits its "
        "dev set into train and dev parts; 48 premise/hypothesis pairs per client and 48 "
        "dev pairs per language (stratified); 500 stratified test pairs per language.",
    },
}

LOW_MEANING = {
    "sib200": "languages outside the 8 high-resource ones",
    "masakhanews": "the 6 languages whose full training split is missing in ../shared/data, "
    "which holds only the upstream 50-per-label sample for them; a data-size group, not a "
    "linguistic one: it includes English and French",
    "xnli": "Swahili and Urdu",
}


def low_resource(dataset: str, langs: list[str], groups: dict) -> list[str]:
    if dataset == "sib200":
        return [x for x in langs if x not in SIB_HIGH]
    if dataset == "masakhanews":
        return list(groups.get("50-shot", []))
    return [x for x in ("sw", "ur") if x in langs]


def chosen_lrs() -> tuple[dict[str, float], dict]:
    """Each method's learning rate, the best on SIB-200 dev (recipe_sweep.py)."""
    path = SWEEP_RESULTS / "recipe_sweep_sib200.json"
    choice = method_choice(json.loads(path.read_text())["rows"]) if path.exists() else {}
    return {m: c["lr"] for m, c in choice.items()}, choice


def chosen_recipe(dataset: str) -> dict[str, dict]:
    """The federated recipe and monolingual learning rate chosen on this dataset's own dev
    sweep (recipe_sweep.py <dataset>), or the defaults where it has none."""
    path = SWEEP_RESULTS / f"recipe_sweep_{TABLE_SWEEPS.get(dataset, dataset)}.json"
    return table_recipe(json.loads(path.read_text())["rows"] if path.exists() else {})


def monolingual_lr(dataset: str) -> float:
    """The monolingual rows' learning rate: the dataset's dev choice, else the default."""
    return recipe_mono_lr(chosen_recipe(dataset))


def recipe_mono_lr(recipe: dict[str, dict]) -> float:
    """The monolingual learning rate a recipe (chosen_recipe) sets, else the default."""
    default = REGISTRY["prompt-encoder"].default_lr
    return recipe["monolingual"]["settings"].get("train.lr", default)


def table_config(dataset: str, seed: int, low: list[str], n_clients: int) -> RunConfig:
    lrs, _ = chosen_lrs()
    raw = RECIPE | BUDGETS[dataset]["overrides"]
    raw |= {
        "data.source": dataset,
        "seed": seed,
        "output_dir": str(RUNS / dataset),
        "name": f"seed{seed}",
        "data.low_resource": low,
    }
    cfg = RunConfig.load(None, harness.override_items(raw))
    cfg.compare.overrides = {
        row: harness.override_items(o)
        for row, o in row_overrides(dataset, n_clients, lrs, chosen_recipe(dataset)).items()
    }
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", choices=sorted(BUDGETS))
    ap.add_argument(
        "--seeds",
        default=",".join(map(str, SEEDS)),
        help=f"seeds this sitting runs (seed {SEEDS[0]} every row, others the stability rows)",
    )
    ap.add_argument("--rows", default=",".join(ROWS), help="paradigm:method rows to run")
    ap.add_argument("--report", action="store_true", help="write results from finished rows")
    ap.add_argument(
        "--set-aside-stale",
        action="store_true",
        help="move rows run with other settings (a dev choice changed since) to "
        "<row>.superseded-<n> and run them again",
    )
    args = ap.parse_args()
    if default_data_root() is None:
        sys.exit("needs ../shared/data or $FEDLINGUA_DATA_ROOT")
    harness.one_thread_per_run()
    seeds = [int(s) for s in args.seeds.split(",")]
    ds = load_dataset(args.dataset)
    langs = ds.languages()
    low = low_resource(args.dataset, langs, getattr(ds, "groups", {}) or {})
    lrs, _ = chosen_lrs()
    wanted = args.rows.split(",")
    record = table_record(args.dataset, low)
    if not args.report:
        missing = [r for r in wanted if r.split(":")[1] not in lrs and r.startswith("federated")]
        if missing:
            sys.exit(
                f"rows {missing} need their learning rate from the dev sweep: run "
                "benchmarks/recipe_sweep.py sib200 first"
            )
        for seed in seeds:
            run_seed(args.dataset, seed, low, len(langs), wanted, record, args.set_aside_stale)
    write_results(args.dataset, ds, reported_seeds(seeds), low)


def run_seed(
    dataset: str,
    seed: int,
    low: list[str],
    n_clients: int,
    wanted: list[str],
    record: dict,
    set_aside: bool = False,
) -> None:
    """Run (or resume) one seed's rows of the table, but those the results file keeps."""
    cfg = table_config(dataset, seed, low, n_clients)
    table_rows = rows_to_run(seed, wanted)
    rows = to_run_here(cfg, table_rows, record)
    if kept := [r for r in table_rows if r not in rows]:
        print(f"seed {seed}: {', '.join(kept)} kept in the results file, not run again")
    if not rows:
        return
    cfg.compare.overrides = {k: v for k, v in cfg.compare.overrides.items() if k in rows}
    if set_aside:
        set_aside_stale(cfg, rows)
    compare(cfg, rows, log=lambda line: print(line, flush=True))


def rows_to_run(seed: int, wanted: list[str]) -> list[str]:
    """The first table seed runs every wanted row; the other seeds the stability rows."""
    return [r for r in wanted if seed == SEEDS[0] or r in STABILITY_ROWS]


def reported_seeds(run: list[int]) -> list[int]:
    """The results cover the table's seeds whichever a sitting ran (a sitting on seeds 1,2
    must not report seed 1 as the table's main seed), plus any extra seed it ran."""
    return SEEDS + [s for s in run if s not in SEEDS]


def set_aside_stale(cfg: RunConfig, rows: list[str]) -> None:
    """Rename the run directories of `rows` made with other settings than `cfg` gives them
    now (kept for reference, never read by the table)."""
    for row in rows:
        path = _row_dir(cfg, row)
        if path.exists() and not stored_row_matches(cfg, *row.split(":")):
            n = 1
            while path.with_name(f"{path.name}.superseded-{n}").exists():
                n += 1
            path.rename(path.with_name(f"{path.name}.superseded-{n}"))
            print(f"{path} was run with other settings: moved to {path.name}.superseded-{n}")


def finished(cfg: RunConfig, row: str, record: dict | None = None) -> dict | None:
    """A row's results, if its run finished with the table's current settings for it (a
    run made with other settings, before a dev choice changed them, counts as pending):
    from its run directory, else from `record` (`table_record`) when that kept the row
    with the same settings."""
    if stored_row_matches(cfg, *row.split(":")):
        results = RunDir(_row_dir(cfg, row)).results()
        if results is not None:
            return results
    return recorded_row(record or {}, cfg, row)


# What the report reads of a finished row; the results file keeps this per row and seed.
REPORT_FIELDS = (
    "paradigm",
    "method",
    "seed",
    "precision",
    "languages",
    "averages",
    "averages_f1",
    "parameters",
    "communication",
    "time",
    "selected_round",
    "rounds_run",
    "curve",
)


def kept_row(r: dict, overrides: list[str]) -> dict:
    """A finished row as the results file keeps it: the fields the report reads (per-language
    confusion matrices aside), the personalized scores, and the row's own overrides."""
    kept = {k: r[k] for k in REPORT_FIELDS if k in r}
    kept["languages"] = {
        x: {k: v for k, v in s.items() if k != "confusion"} for x, s in r["languages"].items()
    }
    if p := r.get("personalized"):
        kept["personalized"] = {"averages": p["averages"]}
        if "languages" in p:
            kept["personalized"]["languages"] = {
                x: {"accuracy": s["accuracy"]} for x, s in p["languages"].items()
            }
    return kept | {"overrides": overrides}


def table_record(dataset: str, low: list[str]) -> dict:
    """The table's results file as last written, when made with its current shared settings
    (recipe, budget, low-resource group); each row's own settings are checked per row."""
    return harness.recorded(
        RESULTS / f"{dataset}.json", recipe=RECIPE, budget=BUDGETS[dataset], low_resource=low
    )


def recorded_row(record: dict, cfg: RunConfig, row: str) -> dict | None:
    """The row of this seed as the results file keeps it, if run with its current overrides."""
    if "runs" not in record:
        return legacy_row(record, cfg, row)
    kept = record["runs"].get(row, {}).get(str(cfg.seed))
    if kept is None or kept.get("overrides") != cfg.compare.overrides.get(row, []):
        return None
    return kept


def legacy_row(record: dict, cfg: RunConfig, row: str) -> dict | None:
    """The row of this seed from a results file written before it kept whole rows under
    "runs", if made with the row's current overrides: the first seed from "rows" (every
    report field but precision), a later seed from "stability" (per-language accuracy and
    the averages; no run time, no per-language personalized scores)."""
    settings = record.get("row_overrides", {}).get(row)
    overrides = cfg.compare.overrides.get(row, [])
    if settings is None or harness.override_items(settings) != overrides:
        return None
    paradigm, method = row.split(":")
    for r in record.get("rows", []):
        if (r.get("paradigm"), r.get("method"), r.get("seed")) == (paradigm, method, cfg.seed):
            out = {k: v for k, v in r.items() if k != "personalized"}
            return out | _legacy_personal(r) | {"overrides": overrides}
    for r in record.get("stability", {}).get(row, []):
        if r.get("seed") == cfg.seed:
            averages = {k: r[k] for k in ("average", "low_resource_average")}
            return {
                "paradigm": paradigm,
                "method": method,
                "seed": cfg.seed,
                "languages": {x: {"accuracy": a} for x, a in r["languages"].items()},
                "averages": averages,
                "overrides": overrides,
            } | _legacy_personal(r)
    return None


def _legacy_personal(r: dict) -> dict:
    """A legacy record's personalized averages in the shape of a run's results."""
    return {"personalized": {"averages": r["personalized"]}} if r.get("personalized") else {}


def to_run_here(cfg: RunConfig, rows: list[str], record: dict) -> list[str]:
    """The rows a sitting runs: all but those the results file kept with their current
    settings and that have no run directory here (a run directory here is resumed or read
    back by `compare`)."""
    return harness.rows_to_run(
        rows,
        here=lambda r: _row_dir(cfg, r).exists(),
        kept=lambda r: recorded_row(record, cfg, r) is not None,
    )


def _row_dir(cfg: RunConfig, row: str) -> Path:
    return Path(cfg.output_dir) / cfg.name / row.replace(":", "-")


def _rounds(selected) -> str:
    """The selected round; per-language rounds (monolingual) as median (min-max)."""
    if not isinstance(selected, dict):
        return str(selected)
    values = sorted(selected.values())
    if values[0] == values[-1]:
        return str(values[0])
    return f"median {statistics.median(values):g} ({values[0]}-{values[-1]})"


def at_the_cap(rows: dict[str, dict]) -> list[str]:
    """Rows whose best dev round was the last one allowed: still improving when the
    budget ended, so their figure is not a converged one."""
    parts = []
    for key, r in rows.items():
        selected = r.get("selected_round")
        if isinstance(selected, dict) and len(set(selected.values())) == 1:
            selected = next(iter(selected.values()))  # one model: every language's round
        if isinstance(selected, dict):  # monolingual: one model per language
            n = sum(1 for v in selected.values() if v == ROUNDS)
            if n:
                parts.append(f"{key.replace(':', ' ')} on {n} of {len(selected)} languages")
        elif selected == ROUNDS:
            parts.append(key.replace(":", " "))
    if not parts:
        return []
    return [
        "",
        f"**Still improving at the cap:** the best dev round was the last allowed ({ROUNDS}) "
        f"for {', '.join(parts)}; more rounds might raise these figures (every row has the "
        "same maximum).",
    ]


def head_to_head(rows: dict[str, dict], order: list[str]) -> list[str]:
    """Federated vs monolingual prompt-encoder, language by language."""
    fed, mono = rows.get("federated:prompt-encoder"), rows.get("monolingual:prompt-encoder")
    if fed is None or mono is None:
        return []
    gap = {
        x: 100 * (fed["languages"][x]["accuracy"] - mono["languages"][x]["accuracy"]) for x in order
    }
    ahead = sorted((x for x in order if gap[x] > 0), key=lambda x: -gap[x])
    behind = sorted((x for x in order if gap[x] < 0), key=lambda x: gap[x])
    line = (
        f"Federated vs monolingual prompt-encoder (seed 0), per language: ahead on "
        f"{len(ahead)} of {len(order)} languages"
    )
    if ahead:
        line += " (" + ", ".join(f"{x} {gap[x]:+.1f}" for x in ahead) + ")"
    line += f", behind on {len(behind)}"
    if behind:
        line += " (largest: " + ", ".join(f"{x} {gap[x]:+.1f}" for x in behind[:3]) + ")"
    return [line + "."]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _mean_sd(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:  # no spread to show: "± 0.0" would read as a measured one
        return f"{100 * vals[0]:.1f} (one seed)"
    return f"{100 * statistics.mean(vals):.1f} ± {100 * statistics.stdev(vals):.1f}"


def shortfall_lines(rows: dict[str, dict]) -> list[str]:
    """Where the federated prompt-encoder trails monolingual (on average or on the
    low-resource group): the classes it recalls far less, and its dev curve's largest fall."""
    fed, mono = rows.get("federated:prompt-encoder"), rows.get("monolingual:prompt-encoder")
    if fed is None or mono is None:
        return []
    fa, ma = fed["averages"], mono["averages"]
    keys = ("average", "low_resource_average")
    if all(fa.get(k) is None or fa[k] >= ma[k] for k in keys):
        return []
    rec_f, rec_m = _recall(fed), _recall(mono)
    n_lang = len(fed["languages"])
    holders = {
        c: sum(1 for s in fed["languages"].values() if s.get("recall", {}).get(c) is not None)
        for c in rec_f
    }
    worse = sorted((c for c in rec_f if rec_f[c] < rec_m.get(c, 0) - 0.15), key=rec_f.get)
    never = [
        sum(1 for s in r["languages"].values() if s.get("never_predicted")) for r in (fed, mono)
    ]
    parts = []
    if worse:
        parts.append(
            "classes it recalls at least 15 points less than the monolingual models: "
            + ", ".join(
                f"{c} {100 * rec_f[c]:.0f} vs {100 * rec_m.get(c, 0):.0f} (a class of "
                f"{holders[c]} of {n_lang} languages)"
                for c in worse
            )
        )
    parts.append(
        f"languages whose test predictions miss a class: {never[0]} federated, {never[1]} "
        "monolingual"
    )
    dev = [c["dev"] for c in fed.get("curve", []) if c.get("dev") is not None]
    falls = [(dev[i] - dev[i + 1], i + 1) for i in range(len(dev) - 1)]
    if falls and max(falls)[0] > 0.05:
        _, r = max(falls)
        parts.append(
            f"its dev average fell from {100 * dev[r - 1]:.1f} to {100 * dev[r]:.1f} "
            f"between rounds {r} and {r + 1}"
        )
    text = "**Where federated prompt tuning falls short (seed 0):** " + "; ".join(parts)
    return ["", text + "."]


def _recall(r: dict) -> dict[str, float]:
    """Per-class recall averaged over languages (where the class occurs in test)."""
    per = [s.get("recall", {}) for s in r["languages"].values()]
    classes = sorted({c for p in per for c in p})
    return {c: statistics.mean(p[c] for p in per if p.get(c) is not None) for c in classes}


def write_results(dataset: str, ds, seeds: list[int], low: list[str]) -> None:
    cfgs = {s: table_config(dataset, s, low, len(ds.languages())) for s in seeds}
    record = table_record(dataset, low)
    main_rows = {row: finished(cfgs[seeds[0]], row, record) for row in ROWS}
    rows = {k: v for k, v in main_rows.items() if v is not None}
    pending = [k for k, v in main_rows.items() if v is None]
    by_seed = {row: {s: finished(cfgs[s], row, record) for s in seeds} for row in STABILITY_ROWS}
    stability = {row: [r for r in v.values() if r is not None] for row, v in by_seed.items()}
    pending += [f"{row} seed {s}" for row, v in by_seed.items() for s in seeds[1:] if v[s] is None]
    if not rows:
        print(f"{dataset}: no finished row yet")
        return
    first = next(iter(rows.values()))
    sizes = {x: s["train_examples"] for x, s in first["languages"].items()}
    upstream = {x: len(ds.split(x, "train")) for x in sizes}
    others = [x for x in sizes if x not in low]
    order = sorted(sizes, key=lambda x: (upstream[x], sizes[x], x))
    lrs, choice = chosen_lrs()
    recipe = chosen_recipe(dataset)
    env = environment()
    runs_counted = [*rows.values(), *(r for v in stability.values() for r in v[1:])]
    wall = sum(r["time"]["wall_s"] for r in runs_counted if "time" in r)
    untimed = sum("time" not in r for r in runs_counted)
    precision = next((r["precision"] for r in rows.values() if r.get("precision")), None)
    lines = [
        f"# {dataset}: paradigms compared, trained to convergence (offline model e5-small)",
        "",
        f"Command: `python benchmarks/paper_tables.py {dataset} --seeds "
        f"{','.join(map(str, seeds))}` (rows may be run in several sittings or two "
        "processes; `--report` rewrites this file from the finished rows). Run time "
        f"{wall / 3600:.1f} h of one core summed over the finished runs"
        + (f", {untimed} recorded without their run time not counted" if untimed else "")
        + f" (one torch thread per run; {env['cpu_count']} cores, torch "
        f"{env['packages']['torch']}, precision {precision or RECIPE['model.precision']}).",
        "",
        f"**Budget:** {BUDGETS[dataset]['note']} Every row trains at most {ROUNDS} rounds "
        f"of {LOCAL_STEPS} local steps (batch {BATCH}) per client, is scored on dev after "
        f"every round, stops after {PATIENCE} rounds without a better dev average and is "
        "scored on test once, at its best dev round (a monolingual model per language, "
        "each at its own best round).",
        "",
        "**Recipe (chosen on dev only, benchmarks/results/recipe_sweep_*.md):** "
        + recipe_note(dataset, recipe)
        + "; learning rates per method from SIB-200 dev: "
        + ", ".join(f"{m} {lr:g}" for m, lr in lrs.items())
        + ". Monolingual: plain cross-entropy, optimizer state kept across rounds (the best "
        "monolingual candidate on SIB-200 dev)"
        + _mono_note(recipe)
        + ". Centralized: one model on the pooled data, "
        "taking the whole federation's local steps each round, plain cross-entropy. "
        f"The federated prompt-encoder's clients also fine-tune the selected model for "
        f"{PERSONALIZE} local steps: the *personalized* column, extra compute, never mixed "
        "into the global model's row.",
        "",
        f"Low-resource group ({LOW_MEANING[dataset]}): {', '.join(low)}; the other "
        f"{len(others)} languages form the other group.",
        "",
    ]
    if pending:
        lines += [f"**Pending (not yet run):** {', '.join(pending)}.", ""]
    lines += [
        "## Averages (seed 0)",
        "",
        "| paradigm / method | avg acc | low-res avg | other avg | avg macro-F1 | "
        "personalized avg / low-res | selected round / rounds run | trainable params | "
        "MB communicated | upload per client-round (MB) | wall (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in rows.items():
        comm = r["communication"]
        other = statistics.mean(r["languages"][x]["accuracy"] for x in others)
        pers = r.get("personalized", {}).get("averages")
        pcell = f"{_pct(pers['average'])} / {_pct(pers['low_resource_average'])}" if pers else "-"
        lines.append(
            f"| {key.replace(':', ' ')} | {_pct(r['averages']['average'])} | "
            f"{_pct(r['averages']['low_resource_average'])} | {_pct(other)} | "
            f"{_pct(r['averages_f1']['average'])} | {pcell} | "
            f"{_rounds(r.get('selected_round'))} / {r['rounds_run']} | "
            f"{r['parameters']['trainable']:,} | {comm['bytes_total'] / 1e6:.2f} | "
            f"{comm['bytes_up_per_client_round'] / 1e6:.3f} | {r['time']['wall_s'] / 60:.0f} |"
        )
    lines += at_the_cap(rows)
    per_round = {
        k: r["communication"]["bytes_up_per_client_round"]
        for k, r in rows.items()
        if k.startswith("federated")
    }
    ratio = None
    if "federated:prompt-encoder" in per_round and "federated:full" in per_round:
        ratio = per_round["federated:prompt-encoder"] / per_round["federated:full"]
        lines += [
            "",
            f"Communication: a federated prompt-encoder client uploads "
            f"{per_round['federated:prompt-encoder'] / 1e6:.3f} MB per round against "
            f"{per_round['federated:full'] / 1e6:.1f} MB for federated full fine-tuning "
            f"(word embeddings frozen): ratio {ratio:.4f}, a {100 * (1 - ratio):.2f}% "
            "reduction per client-round (measured from the serialized payloads).",
        ]
    lines += ["", *head_to_head(rows, order)]
    if any(len(v) > 1 for v in stability.values()):
        lines += stability_lines(stability, order)
    lines += [
        "",
        "## Evidence: recall per class (mean over languages, seed 0)",
        "",
    ]
    classes = sorted({c for r in rows.values() for c in _recall(r)})
    lines += [
        "| paradigm / method | " + " | ".join(classes) + " | languages never predicting a class |",
        "|---|" + "---:|" * len(classes) + "---:|",
    ]
    for key, r in rows.items():
        rec = _recall(r)
        never = sum(1 for s in r["languages"].values() if s.get("never_predicted"))
        lines.append(
            f"| {key.replace(':', ' ')} | "
            + " | ".join(f"{100 * rec.get(c, 0):.0f}" for c in classes)
            + f" | {never} |"
        )
    lines += shortfall_lines(rows)
    lines += [
        "",
        "## Learning curves: dev average accuracy per round (seed 0)",
        "",
        "| paradigm / method | " + " | ".join(str(i) for i in range(1, ROUNDS + 1)) + " |",
        "|---|" + "---:|" * ROUNDS,
    ]
    for key, r in rows.items():
        dev = {c["round"]: c.get("dev") for c in r.get("curve", [])}
        cells = [_pct(dev.get(i)) if dev.get(i) is not None else "" for i in range(1, ROUNDS + 1)]
        lines.append(f"| {key.replace(':', ' ')} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Test accuracy per language (seed 0; languages ordered by upstream training size)",
        "",
        "| paradigm / method | " + " | ".join(order) + " |",
        "|---|" + "---:|" * len(order),
    ]
    for key, r in rows.items():
        cells = [_pct(r["languages"][x]["accuracy"]) for x in order]
        lines.append(f"| {key.replace(':', ' ')} | " + " | ".join(cells) + " |")
    lines.append("| train examples used | " + " | ".join(str(sizes[x]) for x in order) + " |")
    lines.append("| upstream train size | " + " | ".join(str(upstream[x]) for x in order) + " |")
    RESULTS.mkdir(exist_ok=True)
    plot(dataset, rows, order)
    lines += ["", f"![per-language accuracy, accuracy vs communication, curves]({dataset}.png)", ""]
    write_text(RESULTS / f"{dataset}.md", "\n".join(lines) + "\n")
    # "rows": seed 0's rows as the README's verdict reads them (REPORT_FIELDS but precision)
    keep = [k for k in REPORT_FIELDS if k != "precision"]
    slim = [{k: r.get(k) for k in keep} | _personal(r) for r in rows.values()]
    stab = {
        k: [
            {
                "seed": r["seed"],
                "languages": {x: s["accuracy"] for x, s in r["languages"].items()},
                "average": r["averages"]["average"],
                "low_resource_average": r["averages"]["low_resource_average"],
            }
            | _personal(r)
            for r in v
        ]
        for k, v in stability.items()
    }
    runs: dict[str, dict[str, dict]] = {}
    for r in [*rows.values(), *(x for v in stability.values() for x in v)]:
        key = f"{r['paradigm']}:{r['method']}"
        overrides = cfgs[r["seed"]].compare.overrides.get(key, [])
        runs.setdefault(key, {})[str(r["seed"])] = kept_row(r, overrides)
    write_json(
        RESULTS / f"{dataset}.json",
        {
            "command": f"python benchmarks/paper_tables.py {dataset}",
            "recipe": RECIPE,
            "row_overrides": row_overrides(dataset, len(sizes), lrs, recipe),
            "dataset_recipe": recipe,
            "learning_rates": choice,
            "budget": BUDGETS[dataset],
            "low_resource": low,
            "pending": pending,
            "rows": slim,
            "stability": stab,
            "runs": runs,
            "communication_ratio_prompt_vs_full": ratio,
            "wall_s": wall,
            "environment": env,
        },
    )
    print("\n".join(lines))
    verdict.update()  # the READMEs' claim tables follow the results files


def recipe_note(dataset: str, recipe: dict[str, dict]) -> str:
    """The federated recipe in words, with the dev figures that chose it on this dataset."""
    fed = recipe["federated"]
    tau = fed["settings"].get("train.logit_adjustment", 0.5)
    if fed["settings"].get("federation.strategy", "fedadam") == "fedavg":
        text = "FedAvg"
    else:
        step = fed["settings"].get("server_step_x_lr", 10)
        text = f"FedAdam (server step {step:g}x the clients' learning rate)"
    text += f", clients' logit adjustment {tau:g}"
    if len(fed["measured"]) > 1 and fed["candidate"] in fed["measured"]:
        tried = ", ".join(f"{n} {100 * v:.1f}" for n, v in fed["measured"].items())
        sweep = f"recipe_sweep_{TABLE_SWEEPS.get(dataset, dataset)}.md"
        text += f", the best of its variants on this dataset's dev ({sweep}: {tried})"
    return text


def _mono_note(recipe: dict[str, dict]) -> str:
    mono = recipe["monolingual"]
    if len(mono["measured"]) < 2 or mono["candidate"] not in mono["measured"]:
        return ""
    tried = ", ".join(f"{n} {100 * v:.1f}" for n, v in mono["measured"].items())
    return f"; learning rate {recipe_mono_lr(recipe):g}, the best on this dataset's dev ({tried})"


def _personal(r: dict) -> dict:
    p = r.get("personalized")
    return {"personalized": p["averages"]} if p else {}


def stability_lines(stability: dict[str, list[dict]], order: list[str]) -> list[str]:
    seeds = sorted({r["seed"] for v in stability.values() for r in v})
    lines = [
        "",
        f"## Stability over seeds {', '.join(map(str, seeds))}: mean ± std test accuracy",
        "",
        "| language | monolingual prompt-encoder | federated prompt-encoder | "
        "federated, personalized |",
        "|---|---:|---:|---:|",
    ]
    mono, fed = (stability[k] for k in STABILITY_ROWS)
    # per-language personalized scores only where every seed has them (legacy records lack them)
    by_language = all("languages" in r.get("personalized", {}) for r in fed)
    for key, label in (("average", "**average**"), ("low_resource_average", "**low-resource**")):
        pers = [r["personalized"]["averages"][key] for r in fed if r.get("personalized")]
        lines.append(
            f"| {label} | {_mean_sd([r['averages'][key] for r in mono])} | "
            f"{_mean_sd([r['averages'][key] for r in fed])} | {_mean_sd(pers)} |"
        )
    for x in order:
        pers = [r["personalized"]["languages"][x]["accuracy"] for r in fed if by_language]
        lines.append(
            f"| {x} | {_mean_sd([r['languages'][x]['accuracy'] for r in mono])} | "
            f"{_mean_sd([r['languages'][x]['accuracy'] for r in fed])} | {_mean_sd(pers)} |"
        )
    spread = {
        k: statistics.mean(
            statistics.stdev([r["languages"][x]["accuracy"] for r in v]) for x in order
        )
        for k, v in stability.items()
        if len(v) > 1
    }
    n = {k: len(v) for k, v in stability.items()}
    lines += [
        "",
        "Mean over languages of the per-language standard deviation across seeds: "
        + ", ".join(
            f"{k.replace(':', ' ')} {100 * v:.1f} points ({n[k]} seeds)" for k, v in spread.items()
        )
        + ".",
    ]
    if n[STABILITY_ROWS[0]] == n[STABILITY_ROWS[1]] > 1:
        by_seed = {r["seed"]: r for r in mono}
        diffs = [
            (r["seed"], 100 * (r["averages"][k] - by_seed[r["seed"]]["averages"][k]))
            for r in fed
            if r["seed"] in by_seed
            for k in ("average",)
        ]
        lines.append(
            "Federated minus monolingual average, per seed: "
            + ", ".join(f"seed {s} {d:+.1f}" for s, d in diffs)
            + "."
        )
    return lines


def plot(dataset: str, rows: dict[str, dict], order: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(
        1,
        3,
        figsize=(max(12, 0.45 * len(order) + 10), 4.5),
        gridspec_kw={"width_ratios": [3, 1, 1.3]},
    )
    for key, r in rows.items():
        label = key.replace(":", " ")
        ax1.plot(
            order, [100 * r["languages"][x]["accuracy"] for x in order], marker="o", label=label
        )
        mb = max(r["communication"]["bytes_total"] / 1e6, 1e-3)
        acc = 100 * r["averages"]["average"]
        ax2.scatter([mb], [acc], label=label)
        ax2.annotate(label, (mb, acc), xytext=(4, 3), textcoords="offset points", fontsize=7)
        curve = [(c["round"], 100 * c["dev"]) for c in r.get("curve", []) if c.get("dev")]
        if curve:
            ax3.plot(*zip(*curve, strict=True), marker=".", label=label)
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title(f"{dataset}: per language (ordered by training size)")
    ax1.tick_params(axis="x", rotation=60)
    ax1.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("MB communicated (log; local rows at 0.001)")
    ax2.set_ylabel("average test accuracy (%)")
    ax2.set_title("accuracy vs communication")
    ax3.set_xlabel("round")
    ax3.set_ylabel("dev average accuracy (%)")
    ax3.set_title("learning curves (dev)")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{dataset}.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
