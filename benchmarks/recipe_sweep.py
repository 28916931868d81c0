"""Choose the federated optimization recipe on dev data: a sweep over client optimizer,
optimizer state, server strategy and step, local steps, learning rate and logit
adjustment, on the CLDR demo locales and on SIB-200.

Every candidate is a run of the engine (`fedlingua.engine.run`) with early stopping on
dev accuracy, the same maximum rounds, local steps and batch size (equal compute), and
the monolingual paradigm is swept the same way (its best learning rate is the fair
baseline). Only dev scores are read: the selected round, the dev averages and the
per-class recall come from each run's metrics.jsonl `dev` records; test scores of
these runs are never read here.

Usage:  .venv/bin/python benchmarks/recipe_sweep.py cldr|sib200 [--only NAME,...]
Runs are resumable (benchmarks/runs/recipe_sweep/<dataset>/<candidate>, one run
directory each; a finished one is read back, an interrupted one continues). The
results file benchmarks/results/recipe_sweep_<dataset>.md/.json is rewritten after
every candidate and keeps each row with a digest of its resolved config: a later
sitting (even on a fresh clone, once the results file is committed) reuses the rows
whose config is unchanged and runs only the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from pathlib import Path

import harness

from fedlingua.config import RunConfig
from fedlingua.engine import run
from fedlingua.io import write_json, write_text
from fedlingua.report import RunDir
from fedlingua.runtime import environment

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs" / "recipe_sweep"
RESULTS = HERE / "results"

# Equal compute for every candidate: at most ROUNDS rounds of LOCAL_STEPS optimizer steps
# of batch BATCH per client (the monolingual models train the same steps per round);
# every model stops after PATIENCE evaluations without a better dev accuracy.
ROUNDS, LOCAL_STEPS, BATCH, PATIENCE = 20, 4, 16, 4
# Bump when the code behind a recipe changes (a row measured before is then rerun).
REVISION = 1

DATASETS: dict[str, dict] = {
    "cldr": {
        "overrides": {
            "data.source": "cldr",
            "data.max_length": 32,
            "data.max_train_per_client": 48,
            "data.max_eval_per_language": 60,
            "data.low_resource": ["lg", "sn", "rn"],
        },
        "note": "the demo's 8 CLDR locales (fr, sw, ha, am, yo; low-resource lg, sn, rn), "
        "48 training names per locale (stratified: the paper's scarce-data regime), 60 dev "
        "names per locale (stratified).",
    },
    "sib200": {
        "overrides": {
            "data.source": "sib200",
            "data.languages": [
                "eng_Latn",
                "fra_Latn",
                "zho_Hans",
                "hau_Latn",
                "amh_Ethi",
                "yor_Latn",
                "lug_Latn",
                "tir_Ethi",
            ],
            "data.low_resource": ["hau_Latn", "amh_Ethi", "yor_Latn", "lug_Latn", "tir_Ethi"],
            "data.max_length": 64,
            "data.max_train_per_client": 48,
            "data.max_eval_per_language": 60,
        },
        "note": "8 of the 30 SIB-200 languages (3 high-resource, 5 low-resource), 48 "
        "training sentences per language (stratified), 60 of 99 dev sentences (stratified).",
    },
    # label skew on top of language skew: each language holds its own subset of the 7
    # topics (religion and technology in 7 of 16 languages each)
    "masakhanews": {
        "overrides": {
            "data.source": "masakhanews",
            "data.languages": ["eng", "fra", "hau", "swa", "amh", "yor", "tir", "lug"],
            "data.low_resource": ["amh", "eng", "fra", "hau", "swa"],
            "data.max_length": 96,
            "data.max_train_per_client": 48,
            "data.max_dev_per_language": 48,
            "data.max_eval_per_language": 48,
        },
        "note": "8 of the 16 MasakhaNEWS languages (every topic in at least 3 of them; "
        "low-resource = the paper table's 50-shot group), 48 training articles per "
        "language (stratified), 48 dev articles (stratified), 96 text tokens. A first "
        "probe: its choice (FedAdam, logit adjustment 1.0) swung between classes with all "
        "16 clients; the paper table takes masakhanews-16's.",
    },
}
# All 16 MasakhaNEWS languages, the paper table's clients and dev sets: the 8-language
# subset's choice did not carry over to 16 clients (benchmarks/results/masakhanews.md).
DATASETS["masakhanews-16"] = {
    "overrides": {
        k: v for k, v in DATASETS["masakhanews"]["overrides"].items() if k != "data.languages"
    }
    | {"data.low_resource": ["amh", "eng", "fra", "hau", "swa", "tir"]},
    "note": "all 16 MasakhaNEWS languages as clients (the paper table's), 48 training "
    "articles per language (stratified), 48 dev articles (stratified), 96 text tokens; "
    "low-resource = the table's 50-shot group.",
}
# The dev sweep a paper table takes its per-dataset recipe from (paper_tables.py).
TABLE_SWEEPS = {"sib200": "sib200", "masakhanews": "masakhanews-16"}

# The scarce-data regime of the paper (tens of examples per language): the CLDR locales
# with fewer training names each; everything else as in "cldr".
for _n in (16, 24):
    DATASETS[f"cldr-{_n}"] = {
        "overrides": DATASETS["cldr"]["overrides"] | {"data.max_train_per_client": _n},
        "note": DATASETS["cldr"]["note"].replace("48 training", f"{_n} training"),
    }

S1 = {"train.local_steps": 1, "federation.rounds": ROUNDS * LOCAL_STEPS, "evaluation.every": 4}

# name -> overrides on top of the common settings (paradigm federated unless said), in
# the order they run: a sweep cut short still holds the baselines and the main contenders.
CANDIDATES: dict[str, dict] = {
    "mono-adamw": {"paradigm": "monolingual"},
    "mono-adamw-keep": {"paradigm": "monolingual", "train.keep_optimizer_state": True},
    "fedavg-adamw": {},
    "fedadam-adamw": {"federation.strategy": "fedadam"},
    "fedavg-adamw-keep": {"train.keep_optimizer_state": True},
    "scaffold-adamw": {"federation.strategy": "scaffold"},
    "fedavgm-adamw-3e-3": {"federation.strategy": "fedavgm", "train.lr": 3e-3},
    "fedavg-adamw-la1": {"train.logit_adjustment": 1.0},
    "fedadam-adamw-la1": {"federation.strategy": "fedadam", "train.logit_adjustment": 1.0},
    "fedadam-adamw-la1-pers8": {
        "federation.strategy": "fedadam",
        "train.logit_adjustment": 1.0,
        "evaluation.personalize": 8,
    },
    "fedadam-adamw-keep": {"federation.strategy": "fedadam", "train.keep_optimizer_state": True},
    "fedyogi-adamw": {"federation.strategy": "fedyogi"},
    "fedadam-adamw-pers8": {"federation.strategy": "fedadam", "evaluation.personalize": 8},
    "mono-adamw-pers8": {"paradigm": "monolingual", "evaluation.personalize": 8},
    "scaffold-sgd-0.1": {
        "federation.strategy": "scaffold",
        "train.optimizer": "sgd",
        "train.lr": 0.1,
    },
    "fedavg-adamw-3e-3": {"train.lr": 3e-3},
    # FedSGD-like: one local step per round, as many rounds (the same 80 steps), evaluated
    # every 4 rounds (the same 20 evaluations). The server's Adam on the averaged one-step
    # updates is close to centralized Adam on the pooled batch: no client drift.
    "fedadam-sgd-s1": S1
    | {"federation.strategy": "fedadam", "federation.server_lr": 1e-2}
    | {"train.optimizer": "sgd", "train.lr": 1.0},
    "fedadam-adamw-s1": S1 | {"federation.strategy": "fedadam", "federation.server_lr": 1e-2},
    "fedadam-adamw-s1-pers8": S1
    | {"federation.strategy": "fedadam", "federation.server_lr": 1e-2}
    | {"evaluation.personalize": 8},
    "cent-adamw": {"paradigm": "centralized"},
    "fedadam-adamw-la0.5": {"federation.strategy": "fedadam", "train.logit_adjustment": 0.5},
    "fedadam-adamw-la0.5-pers8": {"federation.strategy": "fedadam"}
    | {"train.logit_adjustment": 0.5, "evaluation.personalize": 8},
    "fedadam0.05-adamw-la1": {"federation.strategy": "fedadam"}
    | {"federation.server_lr": 0.05, "train.logit_adjustment": 1.0},
    "mono-adamw-3e-3": {"paradigm": "monolingual", "train.lr": 3e-3},
    # a third of FedAdam's default step (3x the clients' learning rate, not 10x)
    "fedadam0.03-adamw-la0.5": {"federation.strategy": "fedadam"}
    | {"federation.server_lr": 0.03, "train.logit_adjustment": 0.5},
    "mono-adamw-keep-3e-3": {"paradigm": "monolingual"}
    | {"train.keep_optimizer_state": True, "train.lr": 3e-3},
    "fedadam0.03-adamw-la1": {"federation.strategy": "fedadam"}
    | {"federation.server_lr": 0.03, "train.logit_adjustment": 1.0},
    "mono-adamw-keep-3e-2": {"paradigm": "monolingual"}
    | {"train.keep_optimizer_state": True, "train.lr": 3e-2},
    "mono-adamw-keep-1e-1": {"paradigm": "monolingual"}
    | {"train.keep_optimizer_state": True, "train.lr": 1e-1},
}

# The learning rate of the other PEFT methods and of full fine-tuning, on the chosen
# recipe (FedAdam, its step 10x the clients' learning rate; logit adjustment 0.5): the
# method's default and one alternative each. `benchmarks/paper_tables.py` takes each
# method's best on SIB-200 dev. method -> {learning rate: candidate name}
METHOD_LRS = {
    "lora": (1e-3, 3e-3),
    "full": (5e-5, 2e-4),
    "soft-prompt": (3e-2, 1e-1),
}
RECIPE = {"federation.strategy": "fedadam", "train.logit_adjustment": 0.5}
for _lr_index in range(2):  # every method's default first, then the alternatives
    for _method, _lrs in METHOD_LRS.items():
        CANDIDATES[f"{_method}-fedadam-la0.5-lr{_lrs[_lr_index]:g}"] = RECIPE | {
            "method.name": _method,
            "train.lr": _lrs[_lr_index],
        }


def method_choice(rows: dict[str, dict]) -> dict[str, dict]:
    """Per method, its best candidate on dev: method -> {candidate, lr, dev_average}.
    The prompt encoder's is the default recipe (`fedadam-adamw-la0.5`, lr 1e-2, measured
    with or without personalization: the same global model)."""
    default = {"fedadam-adamw-la0.5": 1e-2, "fedadam-adamw-la0.5-pers8": 1e-2}
    pools = {"prompt-encoder": default} | {
        m: {f"{m}-fedadam-la0.5-lr{lr:g}": lr for lr in lrs} for m, lrs in METHOD_LRS.items()
    }
    choice = {}
    for method, pool in pools.items():
        measured = {n: lr for n, lr in pool.items() if n in rows}
        if not measured:
            continue
        best = max(measured, key=lambda n: rows[n]["dev_average"])
        choice[method] = {
            "candidate": best,
            "lr": measured[best],
            "dev_average": rows[best]["dev_average"],
            "measured": {n: rows[n]["dev_average"] for n in measured},
        }
    return choice


# A paper table's per-dataset settings, chosen on that dataset's own dev sweep where it has
# one (the best measured of these; a `-pers<k>` candidate counts as its base recipe): the
# federated recipe (every federated row takes it, its server step scaled to the method's
# learning rate) and the monolingual learning rate.
FEDERATED_VARIANTS = {
    "fedadam-adamw-la0.5": {},
    "fedadam0.03-adamw-la0.5": {"server_step_x_lr": 3.0},
    "fedadam-adamw-la1": {"train.logit_adjustment": 1.0},
    "fedadam0.03-adamw-la1": {"server_step_x_lr": 3.0, "train.logit_adjustment": 1.0},
    "fedavg-adamw-la1": {"federation.strategy": "fedavg", "train.logit_adjustment": 1.0},
}
MONOLINGUAL_VARIANTS = {
    "mono-adamw-keep": {},
    "mono-adamw-keep-3e-3": {"train.lr": 3e-3},
    "mono-adamw-keep-3e-2": {"train.lr": 3e-2},
    "mono-adamw-keep-1e-1": {"train.lr": 1e-1},
}


def table_recipe(rows: dict[str, dict]) -> dict[str, dict]:
    """From one dataset's sweep rows: {"federated"|"monolingual": {candidate, settings,
    measured}}, the best measured variant on dev. The first variant (the default) stays
    until it is measured too: a variant replaces it only once compared with it on dev, so
    a sweep measured in several sittings never switches on half its rows."""
    dev = {re.sub(r"-pers\d+$", "", n): r["dev_average"] for n, r in rows.items()}
    choice = {}
    for kind, variants in (
        ("federated", FEDERATED_VARIANTS),
        ("monolingual", MONOLINGUAL_VARIANTS),
    ):
        measured = {n: dev[n] for n in variants if n in dev}
        default = next(iter(variants))
        best = max(measured, key=measured.get) if default in measured else default
        choice[kind] = {"candidate": best, "settings": variants[best], "measured": measured}
    return choice


COMMON = {
    "model.name": "e5-small",
    "train.lr": 1e-2,  # the prompt encoder's default; candidates may override
    "model.precision": "fp32-onednn",
    "train.batch_size": BATCH,
    "train.local_steps": LOCAL_STEPS,
    "federation.rounds": ROUNDS,
    "evaluation.select_on_dev": True,
    "evaluation.patience": PATIENCE,
    "threads": 1,
    "progress": False,
    "seed": 0,
}


# The library defaults when the sweep began (before it chose FedAdam with logit adjustment
# as the defaults): every candidate states what it changes from these.
SWEEP_BASE = {"federation.strategy": "fedavg", "train.logit_adjustment": 0.0}


def config(dataset: str, name: str) -> RunConfig:
    overrides = SWEEP_BASE | COMMON | DATASETS[dataset]["overrides"] | CANDIDATES[name]
    overrides |= {"output_dir": str(RUNS / dataset), "name": name}
    return RunConfig.load(None, harness.override_items(overrides))


def run_candidate(dataset: str, name: str) -> Path:
    """Run (or finish, or read back) one candidate; returns its run directory."""
    cfg = config(dataset, name)
    rundir = RunDir(Path(cfg.output_dir) / name)
    if rundir.results() is not None:
        return rundir.path
    if rundir.config_path.exists() and rundir.config_path.read_text() != cfg.to_toml():
        raise SystemExit(f"{rundir.path} holds another config: delete it to rerun {name}")
    resume = rundir.path if rundir.config_path.exists() else None
    t0 = time.perf_counter()
    run(cfg, resume=resume, log=lambda line: print(f"[{dataset} {name}] {line}", flush=True))
    print(f"[{dataset} {name}] done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rundir.path


def dev_summary(path: Path, low: list[str]) -> dict:
    """Dev figures of a finished run at its best dev round (per model for monolingual)."""
    rundir = RunDir(path)
    records = [r for r in rundir.metrics() if "dev" in r]
    results = rundir.results() or {}
    monolingual = results.get("paradigm") == "monolingual"
    per_lang: dict[str, dict] = {}
    if monolingual:  # each language's own model at its own best round
        for lang in records[0]["dev"]:
            best = max(records, key=lambda r: r["dev"][lang]["accuracy"])
            per_lang[lang] = best["dev"][lang] | {"round": best["round"]}
    else:
        best = max(records, key=lambda r: statistics.mean(s["accuracy"] for s in r["dev"].values()))
        per_lang = {lang: s | {"round": best["round"]} for lang, s in best["dev"].items()}
    classes = sorted({c for s in per_lang.values() for c in s.get("recall", {})})
    recall = {
        c: statistics.mean(
            s["recall"][c] for s in per_lang.values() if s.get("recall", {}).get(c) is not None
        )
        for c in classes
    }
    return {
        "dev_average": statistics.mean(s["accuracy"] for s in per_lang.values()),
        "dev_low_resource": statistics.mean(s["accuracy"] for k, s in per_lang.items() if k in low)
        if any(k in low for k in per_lang)
        else None,
        "dev_per_language": {k: s["accuracy"] for k, s in per_lang.items()},
        "recall_per_class": recall,
        "never_predicted": {
            k: s["never_predicted"] for k, s in per_lang.items() if s.get("never_predicted")
        },
        "selected_round": max(s["round"] for s in per_lang.values()),
        "rounds_run": results.get("rounds_run"),
        "wall_s": results.get("time", {}).get("wall_s"),
        "communication_mb": results.get("communication", {}).get("bytes_total", 0) / 1e6,
        "personalized_dev_average": _personalized_dev(results),
    }


def _personalized_dev(results: dict) -> float | None:
    """Mean dev accuracy of the clients' personalized models (runs that personalize)."""
    dev = results.get("personalized", {}).get("dev", {})
    return statistics.mean(dev.values()) if dev else None


def write_results(dataset: str, rows: dict[str, dict]) -> None:
    command = reproducing_command(dataset, rows)
    low = DATASETS[dataset]["overrides"]["data.low_resource"]
    ranked = sorted(rows.items(), key=lambda kv: -kv[1]["dev_average"])
    federated = [(n, r) for n, r in ranked if not n.startswith(("mono", "cent", *METHOD_LRS))]
    mono = [(n, r) for n, r in ranked if n.startswith("mono")]
    classes = sorted({c for r in rows.values() for c in r["recall_per_class"]})
    head = [
        f"# Recipe sweep on {dataset} dev",
        "",
        f"Command: `{command}` (each row is a run directory; sittings may run disjoint "
        "`--only` lists, and each rewrites this file from every row measured so far).",
        "",
        DATASETS[dataset]["note"],
        f"Every candidate: e5-small, at most {ROUNDS} rounds of {LOCAL_STEPS} local steps "
        f"(batch {BATCH}), early stopping after {PATIENCE} evaluations without a better "
        "dev accuracy, seed 0. Only dev scores are shown and used; low-resource = "
        f"{', '.join(low)}. The personalized column (candidates with `-pers<k>`) is the "
        "dev accuracy after each client's k extra local steps from the selected model: "
        "extra compute, reported apart from the global model's. A monolingual row's "
        "dev figure takes each language model at its own best dev round, one maximum per "
        "language over the same dev sets (optimistic next to one federated round for all "
        "languages); the test sets, never read here, carry no such selection.",
        "",
        "| candidate | dev avg | dev low-res | personalized dev avg | round | rounds run | "
        + " | ".join(f"recall {c}" for c in classes)
        + " | never predicted | wall s |",
        "|---" + "|---:" * (5 + len(classes)) + "|---|---:|",
    ]
    for name, r in ranked:
        never = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["never_predicted"].items())
        low_avg, pers = r["dev_low_resource"], r.get("personalized_dev_average")
        head.append(
            f"| {name} | {100 * r['dev_average']:.1f} | "
            f"{'-' if low_avg is None else f'{100 * low_avg:.1f}'} | "
            f"{'-' if pers is None else f'{100 * pers:.1f}'} | {r['selected_round']} | "
            f"{r['rounds_run']} | "
            + " | ".join(f"{100 * r['recall_per_class'].get(c, 0):.0f}" for c in classes)
            + f" | {never or '-'} | {r['wall_s'] or 0:.0f} |"
        )
    verdict = []
    if federated and mono:
        (fn, fr), (mn, mr) = federated[0], mono[0]
        verdict = [
            "",
            f"Best federated candidate on dev: **{fn}** ({100 * fr['dev_average']:.1f}); "
            f"best monolingual: **{mn}** ({100 * mr['dev_average']:.1f}); difference "
            f"{100 * (fr['dev_average'] - mr['dev_average']):+.1f} points on average.",
        ]
    choice = _default_choice({dataset: rows})
    methods = method_choice(rows)
    if len(methods) > 1:
        choice += [
            "",
            "Learning rate per method (the best on this dev; the paper tables use it):",
            "",
        ]
        for m, c in methods.items():
            tried = ", ".join(f"{n} {100 * v:.1f}" for n, v in c["measured"].items())
            choice.append(f"- {m}: **lr {c['lr']:g}** ({tried})")
    table = table_recipe(rows)
    tables = [t for t, d in TABLE_SWEEPS.items() if d == dataset]
    if tables and any(len(c["measured"]) > 1 for c in table.values()):
        choice += ["", f"Paper table on {tables[0]} (benchmarks/paper_tables.py takes these):", ""]
        for kind, c in table.items():
            tried = ", ".join(f"{n} {100 * v:.1f}" for n, v in c["measured"].items())
            if c["candidate"] not in c["measured"]:  # the default stays until measured too
                tried = f"the default, not measured yet{'; measured: ' + tried if tried else ''}"
            choice.append(f"- {kind}: **{c['candidate']}** ({tried})")
    write_text(RESULTS / f"recipe_sweep_{dataset}.md", "\n".join(head + verdict + choice) + "\n")
    write_json(
        RESULTS / f"recipe_sweep_{dataset}.json",
        {"command": command, "environment": environment(), "rows": rows},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--only", help="comma-separated candidate names (default: all)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the results from the rows measured so far (committed or on disk)",
    )
    args = parser.parse_args()
    harness.one_thread_per_run()
    if args.report_only:
        _write_merged(args.dataset, {})
        return
    names = args.only.split(",") if args.only else list(CANDIDATES)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; known: {sorted(CANDIDATES)}")
    low = DATASETS[args.dataset]["overrides"]["data.low_resource"]
    for name in names:  # in the order given; measured rows are read back, not rerun
        if name not in _measured_rows(args.dataset):
            path = run_candidate(args.dataset, name)
            row = dev_summary(path, low) | {"config_key": _config_key(args.dataset, name)}
            _write_merged(args.dataset, {name: row})
    _write_merged(args.dataset, {})


def _measured_rows(dataset: str) -> dict[str, dict]:
    """Every candidate measured on today's settings: the committed results, as the last
    sitting to write them left them, then any finished run directory they lack (another
    sitting's candidate that finished after its last write)."""
    saved = _committed_results(dataset)
    low = DATASETS[dataset]["overrides"]["data.low_resource"]
    rows: dict[str, dict] = {}
    for name in CANDIDATES:
        key = _config_key(dataset, name)
        committed = saved.get("rows", {}).get(name)
        if committed and committed.get("config_key") == key:
            rows[name] = committed
        elif _finished_here(dataset, name):
            rows[name] = dev_summary(RUNS / dataset / name, low) | {"config_key": key}
    return rows


def _finished_here(dataset: str, name: str) -> bool:
    rundir = RunDir(RUNS / dataset / name)
    return (
        rundir.results() is not None
        and rundir.config_path.read_text() == config(dataset, name).to_toml()
    )


def _write_merged(dataset: str, fresh: dict[str, dict]) -> None:
    """Rewrite the results from every measured row, read again just before writing, so
    two sittings on one dataset never drop each other's rows."""
    write_results(dataset, _measured_rows(dataset) | fresh)


def reproducing_command(dataset: str, rows: dict[str, dict]) -> str:
    """The command that measures exactly these rows (all candidates: no `--only`)."""
    names = [n for n in CANDIDATES if n in rows]
    only = "" if len(names) == len(CANDIDATES) else f" --only {','.join(names)}"
    return f"python benchmarks/recipe_sweep.py {dataset}{only}"


# The datasets whose dev results choose the defaults (the demo's CLDR budget and SIB-200).
CHOOSING = ("cldr", "sib200")


def _default_choice(fresh: dict[str, dict]) -> list[str]:
    """The rule that chose the defaults: among federated candidates measured on every
    choosing dataset, the largest worst-case dev margin over that dataset's best
    monolingual row (a recipe must help on data it was not tuned on, not win one)."""
    rows = {d: fresh.get(d) or _committed_rows(d) for d in CHOOSING}
    best_mono = {
        d: max((r["dev_average"] for n, r in rs.items() if n.startswith("mono")), default=None)
        for d, rs in rows.items()
    }
    if None in best_mono.values():
        return []
    # a `-pers<k>` candidate's global model is its base candidate's: one recipe
    dev = {
        d: {re.sub(r"-pers\d+$", "", n): r["dev_average"] for n, r in rs.items()}
        for d, rs in rows.items()
    }
    names = set.intersection(*(set(v) for v in dev.values()))
    margins = {
        n: {d: dev[d][n] - best_mono[d] for d in CHOOSING}
        for n in sorted(names)
        if not n.startswith(("mono", "cent", *METHOD_LRS))
    }
    if not margins:
        return []
    ranked = sorted(margins.items(), key=lambda kv: -min(kv[1].values()))
    lines = [
        "",
        "Default recipe: the largest worst-case dev margin over the best monolingual "
        f"row across {' and '.join(CHOOSING)} (candidates measured on both):",
        "",
    ]
    for n, m in ranked:
        parts = ", ".join(f"{d} {100 * v:+.1f}" for d, v in m.items())
        lines.append(f"- {n}: worst {100 * min(m.values()):+.1f} ({parts})")
    lines += ["", f"Chosen: **{ranked[0][0]}**."]
    return lines


def _config_key(dataset: str, name: str) -> str:
    """A digest of what defines the candidate: the sweep's settings, the dataset's and the
    candidate's own, and `REVISION` (bumped when the code behind a recipe changes)."""
    settings = COMMON | DATASETS[dataset]["overrides"] | CANDIDATES[name]
    text = json.dumps(settings | {"revision": REVISION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _committed_results(dataset: str) -> dict:
    return harness.recorded(RESULTS / f"recipe_sweep_{dataset}.json")


def _committed_rows(dataset: str) -> dict[str, dict]:
    return _committed_results(dataset).get("rows", {})


if __name__ == "__main__":
    main()
