"""Generalization to languages no client holds (the paper's zero-shot claim), on SIB-200.

Twenty of the 30 SIB-200 languages are clients; the other ten are held back
(`data.zero_shot_languages`): no client and no training sentence in them; they are scored
on test. Every row runs on the dev-chosen recipe of paper_tables.py (RECIPE, row_overrides,
the SIB-200 budget) with personalization off (a held-back language has no client to
personalize), for each seed:

1. federated prompt-encoder on the 20 clients;
2. centralized prompt-encoder on their pooled data;
3. monolingual prompt-encoder, one model per client language. Each of the 20 models, at
   its best dev round, is scored on every held-back language's dev and test sentences (a
   transfer matrix, `Experiment.matrix`); per held-back language the model with the best
   dev accuracy there is reported on test (`evaluation.pick_on_dev`: chosen on dev, never
   on test). The mean over the 20 models (the average transfer) and the best model on
   test (an oracle, optimistic, never used for a claim) are shown for reference.

Held-back languages, by a rule fixed before any run: within each resource group (the 8
SIB_HIGH languages, the 22 others), sorted alphabetically, every third language from the
first, a third of the group: 3 high-resource and 7 low-resource languages (`held_back`).
Starting from the first language rather than the second was decided on scripts, never on
a score: it holds back 7 languages whose script some client writes and 3 whose script no
client writes.

Usage:  python benchmarks/unseen_languages.py [--seeds 0,1,2] [--rows ...]
        python benchmarks/unseen_languages.py --report   (results from finished rows only)
Rows are run directories (benchmarks/runs/unseen_languages/seed<k>/<row>): an interrupted
row resumes, and a row whose directory is not on this machine (a fresh clone) is read back
from the results file, made with the same settings; a row run or recorded with other
overrides than today's recipe gives it (a dev choice changed since) is pending, the other
rows stay. The monolingual row's transfer matrix
is kept, model by model, in seed<k>/monolingual-transfer.json (recomputed when that row's
best tensors change). Every model is scored on test for every held-back language on the
`--full-transfer` seeds only (default 0): elsewhere only the models dev picks, a cut that
keeps 3 seeds x 3 rows within about 4 h of one core (the results file states it). Two
processes may run disjoint rows at once (one per core), e.g.
`--rows federated:prompt-encoder,centralized:prompt-encoder` and
`--rows monolingual:prompt-encoder`. A smoke run on the tiny model:
--model tiny --languages ... --set federation.rounds=2 --runs /tmp/... --out /tmp/...
Needs ../shared/data (or $FEDLINGUA_DATA_ROOT).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fedlingua.compare import compare, stored_row_matches
from fedlingua.config import RunConfig, apply_override
from fedlingua.data import default_data_root, load_dataset
from fedlingua.engine import load_final_states
from fedlingua.evaluation import pick_on_dev
from fedlingua.experiment import build
from fedlingua.io import read_json, write_json, write_text
from fedlingua.report import RunDir
from fedlingua.runtime import configure_threads, environment

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import verdict  # noqa: E402
from paper_tables import (  # noqa: E402
    BUDGETS,
    RECIPE,
    SIB_HIGH,
    _mean_sd,
    chosen_lrs,
    chosen_recipe,
    low_resource,
    monolingual_lr,
    reported_seeds,
    row_overrides,
    table_config,
)

NAME, DATASET = "unseen_languages", "sib200"
RUNS, RESULTS = HERE / "runs" / NAME, HERE / "results"
FED, CENT, MONO = (f"{p}:prompt-encoder" for p in ("federated", "centralized", "monolingual"))
ROWS = [FED, CENT, MONO]
TRANSFER = "monolingual-transfer.json"
NO_PERSONALIZE = "evaluation.personalize="  # personalization is off in these rows
# Top-level family (Glottolog) and branch of each SIB-200 language here, for the table of
# held-back languages: which of them have a relative among the clients.
FAMILY = {
    "amh_Ethi": ("Afro-Asiatic", "Semitic"),
    "arb_Arab": ("Afro-Asiatic", "Semitic"),
    "tir_Ethi": ("Afro-Asiatic", "Semitic"),
    "gaz_Latn": ("Afro-Asiatic", "Cushitic"),
    "som_Latn": ("Afro-Asiatic", "Cushitic"),
    "hau_Latn": ("Afro-Asiatic", "Chadic"),
    "deu_Latn": ("Indo-European", "Germanic"),
    "eng_Latn": ("Indo-European", "Germanic"),
    "fra_Latn": ("Indo-European", "Romance"),
    "spa_Latn": ("Indo-European", "Romance"),
    "rus_Cyrl": ("Indo-European", "Slavic"),
    "hin_Deva": ("Indo-European", "Indo-Aryan"),
    "npi_Deva": ("Indo-European", "Indo-Aryan"),
    "sin_Sinh": ("Indo-European", "Indo-Aryan"),
    "ibo_Latn": ("Atlantic-Congo", "Volta-Niger"),
    "yor_Latn": ("Atlantic-Congo", "Volta-Niger"),
    "lin_Latn": ("Atlantic-Congo", "Bantu"),
    "lug_Latn": ("Atlantic-Congo", "Bantu"),
    "run_Latn": ("Atlantic-Congo", "Bantu"),
    "sna_Latn": ("Atlantic-Congo", "Bantu"),
    "swh_Latn": ("Atlantic-Congo", "Bantu"),
    "tsn_Latn": ("Atlantic-Congo", "Bantu"),
    "xho_Latn": ("Atlantic-Congo", "Bantu"),
    "zul_Latn": ("Atlantic-Congo", "Bantu"),
    "zho_Hans": ("Sino-Tibetan", "Sinitic"),
    "mya_Mymr": ("Sino-Tibetan", "Burmo-Qiangic"),
    "kaz_Cyrl": ("Turkic", "Kipchak"),
    "khm_Khmr": ("Austroasiatic", "Khmer"),
    "lao_Laoo": ("Tai-Kadai", "Tai"),
    "quy_Latn": ("Quechuan", "Quechua II"),
}


def held_back(languages: list[str]) -> list[str]:
    """The languages no client holds: per resource group, sorted, every third from the
    first, a third of the group (rounded)."""
    high = sorted(x for x in languages if x in SIB_HIGH)
    low = sorted(x for x in languages if x not in SIB_HIGH)
    return [x for group in (high, low) for x in group[::3][: round(len(group) / 3)]]


def script(language: str) -> str:
    return language.rpartition("_")[2]


def row_config(seed: int, clients: list[str], unseen: list[str], args) -> RunConfig:
    """paper_tables' config of the seed with the held-back languages, personalization off."""
    low = low_resource(DATASET, clients + unseen, {})
    raw = table_config(DATASET, seed, low, len(clients)).to_dict()
    ours = {
        "model.name": args.model,
        "output_dir": str(args.runs),
        "data.languages": clients,
        "data.zero_shot_languages": unseen,
    }
    for item in harness.override_items(ours) + args.set:
        apply_override(raw, item)
    cfg = RunConfig.from_dict(raw)
    cfg.compare.overrides = {
        row: [o for o in overrides if not o.startswith(NO_PERSONALIZE)]
        for row, overrides in cfg.compare.overrides.items()
    }
    return cfg.validate()


ROW_KEYS = {FED: "federated", CENT: "centralized", MONO: "mono_dev"}


def rows_to_run(
    runs: Path,
    seed: int,
    rows: list[str],
    unseen: list[str],
    record: dict,
    today: Callable[[int], RunConfig],
) -> list[str]:
    """The rows a sitting runs for one seed: all of `rows` but those the results file keeps
    with today's settings and that have no run directory here (a run directory here is
    resumed or read back by `compare`)."""
    got = collect(runs, [seed], unseen, record, today)["seeds"].get(seed, {})
    folder = runs / f"seed{seed}"
    return harness.rows_to_run(
        rows,
        here=lambda r: (folder / r.replace(":", "-")).exists(),
        kept=lambda r: ROW_KEYS[r] in got,
    )


def run_seed(seed: int, clients: list[str], unseen: list[str], rows: list[str], args) -> None:
    cfg = row_config(seed, clients, unseen, args)
    cfg.compare.overrides = {k: v for k, v in cfg.compare.overrides.items() if k in rows}
    compare(cfg, rows, log=lambda line: print(line, flush=True))
    if MONO in rows:
        transfer_matrix(args.runs / f"seed{seed}", unseen, full=seed in args.full_transfer)


def transfer_matrix(folder: Path, unseen: list[str], full: bool) -> dict:
    """Every monolingual model, at its best dev round, scored on every held-back language's
    dev sentences; on test, the models each language's dev accuracy picks (`full`: every
    model, for the references). Kept model by model in `folder`/TRANSFER: a resumed scoring
    continues; a changed monolingual run starts it afresh."""
    rundir = RunDir(folder / MONO.replace(":", "-"))
    digest = hashlib.sha256((rundir.path / "best.safetensors").read_bytes()).hexdigest()
    path = folder / TRANSFER
    kept = read_json(path) if path.exists() else {}
    if kept.get("best_sha256") != digest or kept.get("languages") != unseen:
        kept = {"best_sha256": digest, "languages": unseen, "dev": {}, "test": {}, "wall_s": 0.0}
    states = load_final_states(rundir.path, "best")
    scorer = _Scorer(rundir, states, kept, path)
    for model in sorted(states):
        if model not in kept["dev"]:
            scorer.score(model, "dev", unseen)
    picks = pick_on_dev(kept["dev"])
    for model in sorted(states):
        wanted = [x for x in unseen if full or model in picks[x]["models"]]
        scorer.score(model, "test", [x for x in wanted if x not in kept["test"].get(model, {})])
    return kept


class _Scorer:
    """Scores one model on some languages and keeps the result; the experiment (backbone,
    data) is built on first use only, so a finished transfer matrix costs nothing."""

    def __init__(self, rundir: RunDir, states: dict, kept: dict, path: Path) -> None:
        self.rundir, self.states, self.kept, self.path = rundir, states, kept, path
        self.exp = None

    def score(self, model: str, split: str, languages: list[str]) -> None:
        if not languages:
            return
        if self.exp is None:
            cfg = RunConfig.load(self.rundir.config_path)
            configure_threads(cfg.threads)
            self.exp = build(cfg)
        t0 = time.perf_counter()
        row = self.exp.matrix({model: self.states[model]}, split, languages)[model]
        self.kept[split].setdefault(model, {}).update(row)
        self.kept["wall_s"] += time.perf_counter() - t0
        write_json(self.path, self.kept)
        print(f"transfer: {model} on {split} of {', '.join(languages)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rows", default=",".join(ROWS), help="paradigm:method rows to run")
    ap.add_argument("--report", action="store_true", help="write results from finished rows")
    ap.add_argument("--model", default="e5-small", help="model.name (tiny for a smoke run)")
    ap.add_argument("--languages", default=None, help="comma-separated pool (default: all 30)")
    ap.add_argument("--set", action="append", default=[], help="extra key=value override")
    ap.add_argument("--runs", type=Path, default=RUNS, help="folder of the run directories")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of the results files")
    ap.add_argument(
        "--full-transfer",
        default="0",
        help="seeds whose monolingual models are all scored on every held-back language's "
        "test sentences, for the average transfer and the oracle (other seeds score only "
        "the models dev picks)",
    )
    args = ap.parse_args()
    if default_data_root() is None:
        sys.exit("needs ../shared/data or $FEDLINGUA_DATA_ROOT")
    harness.one_thread_per_run()
    langs = args.languages.split(",") if args.languages else load_dataset(DATASET).languages()
    unseen = held_back(langs)
    clients = [x for x in langs if x not in unseen]
    seeds = [int(s) for s in args.seeds.split(",")]
    args.full_transfer = [int(s) for s in args.full_transfer.split(",") if s]
    rows = args.rows.split(",")
    # The results file as last written supplies the rows whose run directories are absent.
    lrs, _ = chosen_lrs()
    # (rows recorded with other overrides are pending: collect checks them row by row)
    record = harness.recorded(
        args.out / f"{NAME}.json",
        clients=clients,
        held_back=unseen,
        recipe=RECIPE,
        budget=BUDGETS[DATASET]["overrides"],
        overrides=args.set,
    )
    if not args.report and "prompt-encoder" not in lrs:
        sys.exit(
            "the prompt encoder's learning rate comes from the dev sweep: run "
            "benchmarks/recipe_sweep.py sib200 first"
        )
    today = lambda seed: row_config(seed, clients, unseen, args)  # noqa: E731
    if not args.report:
        for seed in seeds:
            here = rows_to_run(args.runs, seed, rows, unseen, record, today)
            if kept := [r for r in rows if r not in here]:
                print(f"seed {seed}: {', '.join(kept)} kept in the results file, not run again")
            if here:
                run_seed(seed, clients, unseen, here, args)
    data = collect(args.runs, reported_seeds(seeds), unseen, record, today)
    write_results(data, clients, unseen, args)


# ---- results --------------------------------------------------------------------------------
LABELS = {
    "federated": "federated prompt-encoder",
    "centralized": "centralized prompt-encoder",
    "mono_dev": "monolingual, best transfer chosen on dev",
    "mono_mean": "monolingual, average transfer (mean of the models)",
    "mono_oracle": "monolingual, best on test (oracle, not a result)",
}


def collect(
    runs: Path,
    seeds: list[int],
    unseen: list[str],
    recorded: dict | None = None,
    current: Callable[[int], RunConfig] | None = None,
) -> dict:
    """Per seed, the figures of every finished row: per held-back language test accuracy,
    the unseen and seen (client-language) averages, wall time and rounds; and what is
    still pending. A row not finished here (no run directory, or a monolingual row whose
    transfer scoring was cut) is taken from `recorded` (the results file as last written,
    see harness.recorded) when that holds it. With `current` (seed -> that seed's config
    today, `row_config`), a row run or recorded with other overrides than today's (a dev
    choice changed since) is pending, named as run with other settings; the rows whose
    settings did not change stay."""
    out: dict = {"seeds": {}, "pending": []}
    for seed in seeds:
        folder = runs / f"seed{seed}"
        cfg = current(seed) if current else None
        kept = (recorded or {}).get("seeds", {}).get(str(seed), {})
        got: dict = {}
        for key, row in (("federated", FED), ("centralized", CENT)):
            r, stale = _finished(folder, row, cfg)
            if r is not None:
                got[key] = _figures({x: r["languages"][x]["accuracy"] for x in unseen}, r)
                continue
            stale = stale or (key in kept and not _recorded_today(recorded, row, cfg))
            if key in kept and not stale:
                got[key] = kept[key]
            else:
                out["pending"].append(f"{row} seed {seed}" + harness.OTHER_SETTINGS * stale)
        mono, stale = _finished(folder, MONO, cfg)
        pick = _transfer(folder, mono)
        if pick is not None:
            got["mono_dev"] = _figures({x: pick[x]["test"] for x in unseen}, mono)
            got["mono_dev"]["pick"] = {x: pick[x]["models"] for x in unseen}
            got["mono_dev"]["transfer_wall_s"] = read_json(folder / TRANSFER)["wall_s"]
            if all("mean_test" in pick[x] for x in unseen):
                got["mono_mean"] = _figures({x: pick[x]["mean_test"] for x in unseen})
                got["mono_oracle"] = _figures({x: pick[x]["oracle_test"] for x in unseen})
            out["seeds"][seed] = got
            continue
        recorded_stale = "mono_dev" in kept and not _recorded_today(recorded, MONO, cfg)
        if "mono_dev" in kept and not (stale or recorded_stale):
            got |= {k: kept[k] for k in ("mono_dev", "mono_mean", "mono_oracle") if k in kept}
        else:  # a row here cut in its transfer scoring has today's settings
            cut = " (transfer)" if mono else ""
            stale = stale or (recorded_stale and mono is None)
            out["pending"].append(f"{MONO} seed {seed}{cut}" + harness.OTHER_SETTINGS * stale)
        out["seeds"][seed] = got
    return out


def _finished(folder: Path, row: str, cfg: RunConfig | None) -> tuple[dict | None, bool]:
    """A row's results from its run directory, and whether that directory holds a run with
    other overrides than `cfg` gives the row today (then its results are not read)."""
    r = RunDir(folder / row.replace(":", "-")).results()
    if r is not None and cfg is not None and not stored_row_matches(cfg, *row.split(":")):
        return None, True
    return r, False


def _recorded_today(recorded: dict | None, row: str, cfg: RunConfig | None) -> bool:
    """Whether the results file recorded `row` with the overrides `cfg` gives it today (a
    file records each row's settings as a dict, personalization included)."""
    was = (recorded or {}).get("row_overrides", {}).get(row)
    if cfg is None or was is None:
        return True
    items = [o for o in harness.override_items(was) if not o.startswith(NO_PERSONALIZE)]
    return items == cfg.compare.overrides.get(row, [])


def _transfer(folder: Path, mono: dict | None) -> dict | None:
    """The dev pick per held-back language, once the monolingual row and its transfer
    matrix are complete (every model on dev, the picked ones on test); else None."""
    if mono is None or not (folder / TRANSFER).exists():
        return None
    kept = read_json(folder / TRANSFER)
    if set(kept["dev"]) != set(mono["languages"]):
        return None
    try:
        return pick_on_dev(kept["dev"], kept["test"])
    except (KeyError, ValueError):
        return None


def _figures(per_language: dict[str, float], r: dict | None = None) -> dict:
    """A row's test accuracy per held-back language and its mean; with the run's results
    `r`, also its client-language average, wall time and rounds."""
    out = {"languages": per_language, "unseen": statistics.mean(per_language.values())}
    if r is not None:
        out |= {
            "seen": r["averages"]["client_average"],
            "wall_s": r["time"]["wall_s"],
            "rounds_run": r["rounds_run"],
            "selected_round": r["selected_round"],
        }
    return out


def _values(data: dict, key: str, field: str = "unseen") -> dict[int, float]:
    """seed -> a figure of row `key`, over the seeds where that row is finished."""
    return {k: s[key][field] for k, s in data["seeds"].items() if key in s and field in s[key]}


def _lang_means(data: dict, key: str) -> dict[str, float]:
    """Per held-back language, the mean over seeds of row `key`'s test accuracy."""
    figs = [s[key]["languages"] for s in data["seeds"].values() if key in s]
    return {x: statistics.mean(f[x] for f in figs) for x in figs[0]} if figs else {}


def write_results(data: dict, clients: list[str], unseen: list[str], args) -> None:
    new_script = [x for x in unseen if script(x) not in {script(c) for c in clients}]
    cfg = row_config(next(iter(data["seeds"])), clients, unseen, args)
    lines = _header(data, cfg, new_script, args)
    if data["pending"]:
        lines += [f"**Pending (not yet run):** {', '.join(data['pending'])}.", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    if any(data["seeds"].values()):
        lines += _averages(data, unseen, new_script, len(clients))
        lines += _verdicts(data, unseen)
        lines += _per_language(data, unseen, new_script)
        lines += _times(data)
        plot(data, unseen, new_script, args.out / f"{NAME}.png")
        lines += ["", f"![test accuracy per held-back language, mean ± std over seeds]({NAME}.png)"]
    write_text(args.out / f"{NAME}.md", "\n".join(lines) + "\n")
    lrs, _ = chosen_lrs()
    write_json(
        args.out / f"{NAME}.json",
        {
            "command": command(args),
            "clients": clients,
            "held_back": unseen,
            "held_back_new_script": new_script,
            "families": {x: FAMILY.get(x) for x in clients + unseen},
            "recipe": RECIPE,
            "row_overrides": row_overrides(DATASET, len(clients), lrs, chosen_recipe(DATASET)),
            "personalize": 0,
            "budget": BUDGETS[DATASET]["overrides"],
            "overrides": args.set,
            "full_transfer_seeds": args.full_transfer,
            "pending": data["pending"],
            "seeds": data["seeds"],
            "verdicts": {
                name: versus(data, unseen, a, b) for name, (a, b, _) in COMPARISONS.items()
            },
            "environment": environment(),
        },
    )
    if args.out == RESULTS:
        verdict.update()  # the READMEs' claim tables follow the results files
    print("\n".join(lines))


def command(args) -> str:
    seeds = reported_seeds([int(s) for s in args.seeds.split(",")])
    parts = ["python benchmarks/unseen_languages.py", f"--seeds {','.join(map(str, seeds))}"]
    for flag, value, default in (
        ("--model", args.model, "e5-small"),
        ("--languages", args.languages, None),
        ("--full-transfer", ",".join(map(str, args.full_transfer)), "0"),
        ("--runs", str(args.runs), str(RUNS)),
        ("--out", str(args.out), str(RESULTS)),
    ):
        if value != default:
            parts.append(f"{flag} {value}")
    return " ".join(parts + [f"--set {item}" for item in args.set])


def _cut(args, seeds: list[int], n_models: int) -> str:
    full = [s for s in seeds if s in args.full_transfer]
    if full == seeds:
        return "none: every monolingual model is scored on every held-back test set, every seed."
    return (
        f"the {n_models} monolingual models are all scored on every held-back language's test "
        f"sentences (for the average transfer and the oracle) on seed(s) "
        f"{', '.join(map(str, full)) or 'none'} only (`--full-transfer`); on the other seeds "
        "each held-back language's test sentences are scored by the models its dev sentences "
        "pick (every model is scored on every held-back dev set, every seed): about 15 "
        "minutes of one core less per seed. Nothing else is cut (the budget and recipe "
        "below). Estimate without the cut, 20 clients: about 4.5 h of one core for 3 seeds "
        "(per seed, federated ~23 min, centralized ~23 min, "
        "monolingual ~24 min, transfer ~19 min, at about 45 evaluated and 25 trained "
        "sentences per second of one core)."
    )


def _header(data: dict, cfg: RunConfig, new_script: list[str], args) -> list[str]:
    """Command, run time, cut, protocol (read from the rows' base config) and the table of
    held-back languages."""
    seeds, d, t = list(data["seeds"]), cfg.data, cfg.train
    clients, unseen = d.languages, d.zero_shot_languages
    wall = sum(
        f.get("wall_s", 0.0) + f.get("transfer_wall_s", 0.0)
        for s in data["seeds"].values()
        for f in s.values()
    )
    env, (lrs, _) = environment(), chosen_lrs()
    n_test = d.max_eval_per_language or "all 204"
    lines = [
        f"# Languages no client holds: SIB-200, {len(clients)} client languages and "
        f"{len(unseen)} held back (model {args.model})",
        "",
        f"Command: `{command(args)}` (rows may run in several sittings or in two processes, "
        f"e.g. `--rows {FED},{CENT}` in one and `--rows {MONO}` in the other; `--report` "
        f"rewrites this file from the finished rows). Run time {wall / 3600:.2f} h of one "
        "core summed over the finished runs and transfer scoring (one torch thread per run; "
        f"{env['cpu_count']} cores, torch {env['packages']['torch']}).",
        "",
        f"**Cut to fit 3-4 h of one core for {len(seeds)} seeds:** "
        + _cut(args, seeds, len(clients)),
        "",
        f"**Protocol:** {len(clients)} clients, one per language, "
        f"{d.max_train_per_client} training sentences each (stratified); "
        f"{d.max_dev_per_language} of 99 dev sentences per language "
        f"(stratified) and {n_test} test sentences; SIB-200 texts are parallel across "
        "languages (row i is the same sentence in every language). Every row trains at most "
        f"{cfg.federation.rounds} rounds of {t.local_steps} local steps (batch "
        f"{t.batch_size}), is scored on dev after every round, stops after "
        f"{cfg.evaluation.patience} rounds without a better dev average over the client "
        "languages (held-back dev sets take no part in selection) and is scored on test "
        "once, at its best dev round. Recipe of paper_tables.py (chosen on "
        f"dev): FedAdam, clients' logit adjustment 0.5, prompt-encoder learning rate "
        f"{lrs.get('prompt-encoder')}; monolingual: plain cross-entropy, optimizer state "
        f"kept, learning rate {monolingual_lr(DATASET):g} (SIB-200 dev); centralized: the "
        f"pooled data, {t.local_steps} x {len(clients)} steps per round, plain "
        "cross-entropy. No personalization.",
        "",
        "**What reads the held-back languages:** no row trains on them. The federated and "
        "centralized rows choose their round on the dev average over all evaluated languages, "
        "held-back ones included (the engine selects on every evaluated dev set); each "
        "monolingual model chooses its round on its own language's dev set, and per held-back "
        "language the transfer is picked on that language's dev set. Test sentences are "
        "read once, for the reported score.",
        "",
    ]
    if args.set:
        lines += [f"**Overrides of this run:** {', '.join(args.set)}.", ""]
    return lines + _held_back_table(clients, unseen, new_script)


def _held_back_table(clients: list[str], unseen: list[str], new_script: list[str]) -> list[str]:
    lines = [
        "**Held-back languages** (rule fixed before any run: per resource group, the 8 "
        "high-resource languages of paper_tables.SIB_HIGH and the others, sorted "
        "alphabetically, every third language from the first, a third of the group):",
        "",
        "| held back | resource | script | clients writing it | family (branch) | "
        "clients of that family (those of the same branch) |",
        "|---|---|---|---|---|---|",
    ]
    for x in unseen:
        fam, branch = FAMILY.get(x, ("?", "?"))
        same_script = [c for c in clients if script(c) == script(x)]
        kin = [c for c in clients if FAMILY.get(c, ("",))[0] == fam]
        near = [c for c in kin if FAMILY[c][1] == branch]
        lines.append(
            f"| {x} | {'high' if x in SIB_HIGH else 'low'} | {script(x)} | "
            f"{len(same_script) or '**none: new script**'} | {fam} ({branch}) | "
            f"{len(kin)} ({', '.join(near) or 'none'}) |"
        )
    old = [x for x in unseen if x not in new_script]
    return lines + [
        "",
        f"Script written by some client: {', '.join(old) or 'none'}; by no client: "
        f"{', '.join(new_script) or 'none'}. Clients: {', '.join(clients)}.",
        "",
    ]


def _averages(data: dict, unseen: list[str], new_script: list[str], n_clients: int) -> list[str]:
    old = [x for x in unseen if x not in new_script]
    lines = [
        "## Averages: test accuracy (%), mean ± std over seeds",
        "",
        f"| row | seeds | held-back languages ({len(unseen)}) | script a client writes "
        f"({len(old)}) | new script ({len(new_script)}) | client languages | client minus "
        "held-back |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LABELS.items():
        figs = [s[key] for s in data["seeds"].values() if key in s]
        if not figs:
            continue
        seen = [f["seen"] for f in figs if "seen" in f]
        gap = [f["seen"] - f["unseen"] for f in figs if "seen" in f]
        groups = [
            _mean_sd([statistics.mean(f["languages"][x] for x in g) for f in figs] if g else [])
            for g in (old, new_script)
        ]
        lines.append(
            f"| {label} | {len(figs)} | {_mean_sd([f['unseen'] for f in figs])} | "
            f"{groups[0]} | {groups[1]} | {_mean_sd(seen)} | {_mean_sd(gap)} |"
        )
    return lines + [
        "",
        f"Client languages: each row's average over the {n_clients} client languages' test "
        "sets (for "
        "the monolingual row, each model on its own language).",
        "",
    ]


def _verdicts(data: dict, unseen: list[str]) -> list[str]:
    return [
        "## Verdicts",
        "",
        *(_versus(versus(data, unseen, a, b), a, b, title) for a, b, title in COMPARISONS.values()),
        _gap_line(data, unseen),
        "",
    ]


COMPARISONS = {  # name in the results file: (row, against, title)
    "federated_vs_mono_dev": (
        "federated",
        "mono_dev",
        "Federated vs the best monolingual transfer (chosen on dev)",
    ),
    "federated_vs_centralized": (
        "federated",
        "centralized",
        "Federated vs centralized on the held-back languages",
    ),
}


def versus(data: dict, unseen: list[str], a: str, b: str) -> dict | None:
    """Row `a` against row `b` over the seeds where both finished: their held-back averages,
    the per-seed differences (points) and the held-back languages on which `a`'s mean over
    those seeds is higher. None before both have a seed."""
    va, vb = _values(data, a), _values(data, b)
    both = [k for k in va if k in vb]
    if not both:
        return None

    def mean(key: str, x: str) -> float:
        return statistics.mean(data["seeds"][k][key]["languages"][x] for k in both)

    return {
        "seeds": both,
        "averages": {a: [va[k] for k in both], b: [vb[k] for k in both]},
        "differences": [100 * (va[k] - vb[k]) for k in both],
        "ahead": sum(1 for x in unseen if mean(a, x) > mean(b, x)),
        "languages": len(unseen),
    }


def _versus(v: dict | None, a: str, b: str, title: str) -> str:
    if v is None:
        return f"- **{title}:** not measured yet."
    both, diffs = v["seeds"], v["differences"]
    every = "in the one seed" if len(both) == 1 else f"in all {len(both)} seeds"
    if all(d == 0 for d in diffs):
        verdict = f"equal {every}"
    elif all(d > 0 for d in diffs):
        verdict = f"{LABELS[a]} higher {every}"
    elif all(d < 0 for d in diffs):
        verdict = f"{LABELS[b]} higher {every}"
    else:
        verdict = "no consistent difference (not the same sign in every seed)"
    spread = f" ± {statistics.stdev(diffs):.1f}" if len(diffs) > 1 else " (one seed)"
    return (
        f"- **{title}:** {verdict}: held-back average {_mean_sd(v['averages'][a])} vs "
        f"{_mean_sd(v['averages'][b])}, difference {statistics.mean(diffs):+.1f}{spread} "
        "points ("
        + ", ".join(f"seed {k} {d:+.1f}" for k, d in zip(both, diffs, strict=True))
        + f"); ahead on {v['ahead']} of {v['languages']} held-back languages (means over "
        "those seeds)."
    )


def _gap_line(data: dict, unseen: list[str]) -> str:
    gaps = {}
    for key in ("federated", "centralized", "mono_dev"):
        on_clients, held = _values(data, key, "seen"), _values(data, key)
        if on_clients:
            gaps[key] = [100 * (on_clients[k] - held[k]) for k in on_clients]
    if not gaps:
        return "- **Client minus held-back average:** not measured yet."
    parts = [
        f"{LABELS[k].split(',')[0]} {statistics.mean(v):.1f}"
        + (f" ± {statistics.stdev(v):.1f}" if len(v) > 1 else "")
        for k, v in gaps.items()
    ]
    return (
        "- **Client minus held-back average** (monolingual: each model on its own language "
        "minus the best transfer chosen on dev): "
        + "; ".join(parts)
        + ". Negative: the held-back languages score higher. The two averages are over "
        f"different languages ({sum(x in SIB_HIGH for x in unseen)} of the {len(unseen)} "
        "held back are high-resource), so this gap compares language sets, not how much "
        "transfer loses."
    )


def _per_language(data: dict, unseen: list[str], new_script: list[str]) -> list[str]:
    keys = [k for k in LABELS if any(k in s for s in data["seeds"].values())]
    lines = [
        "## Per held-back language: test accuracy (%), mean ± std over seeds",
        "",
        "| language | " + " | ".join(LABELS[k] for k in keys) + " | picked on dev, per seed |",
        "|---|" + "---:|" * len(keys) + "---|",
    ]
    for x in unseen:
        cells = [
            _mean_sd([s[k]["languages"][x] for s in data["seeds"].values() if k in s]) for k in keys
        ]
        picks = "; ".join(
            f"{seed}: {'/'.join(s['mono_dev']['pick'][x])}"
            for seed, s in data["seeds"].items()
            if "mono_dev" in s
        )
        name = f"{x} (new script)" if x in new_script else x
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {picks or '-'} |")
    return lines + [
        "",
        "Picked on dev: the monolingual model(s) with the best dev accuracy on the language "
        "(several when tied: the figure is then their mean test accuracy). The oracle row "
        "takes the best model on test itself: optimistic, shown for reference only.",
        "",
    ]


def _times(data: dict) -> list[str]:
    lines = [
        "## Wall time and rounds per row",
        "",
        "| seed | row | wall (min) | rounds run | selected round (best dev) |",
        "|---:|---|---:|---:|---|",
    ]
    for seed, s in data["seeds"].items():
        for key in ("federated", "centralized", "mono_dev"):
            if key not in s:
                continue
            f = s[key]
            sel = f["selected_round"]
            r = sorted(sel.values()) if isinstance(sel, dict) else [sel]
            if r[0] != r[-1]:  # monolingual: each language's model at its own round
                sel = f"{r[0]}-{r[-1]} (median {statistics.median(r):g})"
            else:
                sel = r[0]
            label = "monolingual prompt-encoder" if key == "mono_dev" else LABELS[key]
            lines.append(
                f"| {seed} | {label} | {f['wall_s'] / 60:.1f} | {f['rounds_run']} | {sel} |"
            )
            if key == "mono_dev":
                lines.append(
                    f"| {seed} | transfer matrix (scoring only) | "
                    f"{f['transfer_wall_s'] / 60:.1f} | - | - |"
                )
    return lines


def plot(data: dict, unseen: list[str], new_script: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [k for k in ("federated", "centralized", "mono_dev") if _lang_means(data, k)]
    names = unseen + ["average"]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(names) + 2), 4.5))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        per_seed = [
            [s[key]["languages"][x] for x in unseen] + [s[key]["unseen"]]
            for s in data["seeds"].values()
            if key in s
        ]
        vals = 100 * np.array(per_seed)
        err = vals.std(axis=0, ddof=1) if len(vals) > 1 else None
        xs = np.arange(len(names)) + (i - (len(keys) - 1) / 2) * width
        ax.bar(xs, vals.mean(axis=0), width, yerr=err, capsize=2, label=LABELS[key])
    if _lang_means(data, "mono_mean"):  # a dashed line across each language's group
        mean, avg = _lang_means(data, "mono_mean"), _values(data, "mono_mean")
        ys = [100 * mean[x] for x in unseen] + [100 * statistics.mean(avg.values())]
        seeds = ", ".join(map(str, avg))
        ax.hlines(
            ys,
            np.arange(len(names)) - 0.42,
            np.arange(len(names)) + 0.42,
            colors="black",
            linestyles="dashed",
            label=f"{LABELS['mono_mean']}, seed(s) {seeds}",
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(
        [f"{x}\n(new script)" if x in new_script else x for x in names],
        rotation=45,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_title("SIB-200 languages no client holds")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
