"""The three paradigms as one engine: federated, local monolingual, centralized.

Every paradigm is a set of federations trained for R rounds of E local epochs:

* federated   -- one federation whose nodes are all clients (the paper's paradigm);
* monolingual -- one federation per language with that language's data as its
  only node: a local model trained exactly as a federated client would be
  (the same passes over its data, the same optimizer resets), so the only
  difference from federation is the averaging;
* centralized -- one federation with one node holding every client's data.

So any method runs with any paradigm, and "federated full" or "monolingual
prompt-encoder" are one flag each. All federations share one workbench (one
frozen backbone); only trainable tensors are swapped in and out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import torch
from flwr.app import ConfigRecord
from flwr.serverapp import Grid
from tqdm.auto import tqdm

from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import (
    ClientData,
    EncodedSplit,
    MultilingualDataset,
    encode,
    load_dataset,
    make_clients,
    text_budget,
)
from fedlingua.data.sampling import rng_for, stratified_sample
from fedlingua.evaluation import averages, scores
from fedlingua.federation.client import ClientSite, handle_train, train_config
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.server import Federation, RoundOutcome
from fedlingua.federation.strategies import make_strategy
from fedlingua.models import Backbone, load_backbone
from fedlingua.report import RunDir, language_table
from fedlingua.runtime import (
    configure_threads,
    environment,
    flower_log_level,
    progress_enabled,
)
from fedlingua.training import State, Workbench, build_workbench, predict

GLOBAL = "global"
POOLED = "pooled"


@dataclass
class Prepared:
    """Data and model of a run, reusable by several runs on the same data (compare rows)."""

    dataset: MultilingualDataset
    backbone: Backbone
    clients: list[ClientData]
    eval_languages: list[str]
    max_length: int
    train: dict[str, EncodedSplit] = field(default_factory=dict)  # client id -> encoded
    test: dict[str, EncodedSplit] = field(default_factory=dict)  # lang -> encoded
    dev: dict[str, EncodedSplit] = field(default_factory=dict)  # lang -> encoded


def _cap(examples: list, limit: int | None, *seed_parts: object) -> list:
    """At most `limit` examples, a seeded stratified sample (never just the head of a file)."""
    if limit is None or len(examples) <= limit:
        return examples
    keep = stratified_sample([ex.label for ex in examples], limit, rng_for("eval-cap", *seed_parts))
    return [examples[i] for i in keep]


def prepare(
    cfg: RunConfig,
    *,
    backbone: Backbone | None = None,
    dataset: MultilingualDataset | None = None,
    virtual_tokens: int = 0,
) -> Prepared:
    """Load (or reuse) the backbone and the data, build clients and tokenize everything once."""
    backbone = backbone or load_backbone(cfg.model.name)
    cfg.check_prompt_room(backbone.max_positions)
    if dataset is None:
        d = cfg.data
        dataset = load_dataset(
            d.source,
            root=d.root,
            columns=d.columns,
            on_bad_rows=d.on_bad_rows,
            seed=cfg.seed,
        )
    available = dataset.languages()
    cfg.check_languages(available)
    d = cfg.data
    client_langs = d.languages or [x for x in available if x not in d.zero_shot_languages]
    eval_langs = d.eval_languages or client_langs + [
        x for x in d.zero_shot_languages if x not in client_langs
    ]
    clients = make_clients(
        dataset,
        languages=client_langs,
        clients_per_language=d.clients_per_language,
        partition=d.partition,
        alpha=d.alpha,
        few_shot=d.few_shot,
        max_train=d.max_train_per_client,
        seed=cfg.seed,
    )
    max_length = text_budget(backbone.max_positions, virtual_tokens, d.max_length)
    prep = Prepared(dataset, backbone, clients, eval_langs, max_length)
    tok, prefix = backbone.tokenizer, backbone.text_prefix
    for c in clients:
        prep.train[c.client_id] = encode(tok, c.train, max_length=max_length, text_prefix=prefix)
    for lang in eval_langs:
        for split, store in (("test", prep.test), ("dev", prep.dev)):
            rows = _cap(dataset.split(lang, split), d.max_eval_per_language, cfg.seed, lang, split)
            store[lang] = encode(tok, rows, max_length=max_length, text_prefix=prefix)
    return prep


def _concat(parts: list[EncodedSplit]) -> EncodedSplit:
    return EncodedSplit(
        input_ids=[ids for p in parts for ids in p.input_ids],
        labels=[y for p in parts for y in p.labels],
        langs=[x for p in parts for x in p.langs],
    )


def _sites(cfg: RunConfig, prep: Prepared) -> dict[str, list[ClientSite]]:
    """Federation name -> its nodes, for the configured paradigm."""
    sites = [ClientSite(c.client_id, c.lang, prep.train[c.client_id]) for c in prep.clients]
    if cfg.paradigm == "federated":
        return {GLOBAL: sites}
    if cfg.paradigm == "centralized":
        return {POOLED: [ClientSite(POOLED, "all", _concat([s.train for s in sites]))]}
    by_lang: dict[str, list[ClientSite]] = {}
    for s in sites:
        by_lang.setdefault(s.lang, []).append(s)
    return {
        lang: [ClientSite(lang, lang, _concat([s.train for s in group]))]
        for lang, group in by_lang.items()
    }


def _federations(
    cfg: RunConfig,
    bench: Workbench,
    prep: Prepared,
    on_step: Callable[[], None] | None,
    grid: Grid | None = None,
    node_names: dict[int, str] | None = None,
) -> dict[str, Federation]:
    if grid is not None and cfg.paradigm != "federated":
        raise ConfigError(f"paradigm={cfg.paradigm!r} runs in-process only, not on a Flower grid")
    if cfg.paradigm == "federated" and cfg.federation.min_clients > len(prep.clients):
        raise ConfigError(
            f"federation.min_clients={cfg.federation.min_clients} but the config makes only "
            f"{len(prep.clients)} clients: no round could ever aggregate"
        )
    from fedlingua.federation import secagg
    from fedlingua.privacy.dp import DPPlan, client_mods
    from fedlingua.privacy.payload import payload_log_mods

    lr = cfg.train.lr or bench.method.default_lr
    init = bench.get_state()
    plan = DPPlan.of(cfg)
    feds = {}
    secure = cfg.privacy.secure_aggregation
    for name, sites in _sites(cfg, prep).items():
        if grid is None:
            handlers = {
                i + 1: partial(secagg.dispatch, bench, site)
                if secure
                else partial(handle_train, bench, site, on_step=on_step)
                for i, site in enumerate(sites)
            }
            # the mods a Flower ClientApp applies: payload log (outermost), DP
            fed_grid = InProcessGrid(handlers, mods=payload_log_mods() + client_mods(cfg))
            names = {i + 1: s.client_id for i, s in enumerate(sites)}
        else:  # Flower's grid (the ServerApp): its SuperNodes play the clients
            fed_grid, names = grid, dict(node_names or {})
        fed_cfg = cfg.federation
        if cfg.paradigm != "federated":  # a single node: plain replacement, no faults
            fed_cfg = type(fed_cfg)(rounds=fed_cfg.rounds)
        base_config = train_config(cfg, lr)
        if cfg.paradigm != "federated":
            base_config["client-dropout"] = 0.0
        if secure:  # Flower's SecAgg+ workflow: the server obtains only the sum
            feds[name] = secagg.SecAggFederation(
                name,
                fed_grid,
                {k: v.clone() for k, v in init.items()},
                lambda rnd, c=base_config: ConfigRecord(dict(c)),
                seed=cfg.seed,
                privacy=cfg.privacy,
                fraction=fed_cfg.fraction,
                node_names=names,
                rounds=fed_cfg.rounds,
            )
            continue
        feds[name] = Federation(
            name,
            make_strategy(fed_cfg, len(sites), equal_weights=plan.equal_weights, wrap=plan.wrap),
            fed_grid,
            {k: v.clone() for k, v in init.items()},
            lambda rnd, c=base_config: ConfigRecord(dict(c)),
            seed=cfg.seed,
            node_names=names,
            timeout=fed_cfg.round_timeout,
            min_clients=fed_cfg.min_clients,
            measure=cfg.paradigm == "federated",
            seed_noise=plan.seed_server_noise,
        )
    return feds


def _evaluate(
    cfg: RunConfig, bench: Workbench, prep: Prepared, states: dict[str, State], split: str
) -> dict[str, dict]:
    """Scores per language: each language by the model that serves it."""
    data = prep.test if split == "test" else prep.dev
    out = {}
    for lang in prep.eval_languages:
        model = lang if cfg.paradigm == "monolingual" else next(iter(states))
        if model not in states or len(data[lang]) == 0:
            continue
        preds = predict(bench, states[model], data[lang], cfg.train.eval_batch_size)
        out[lang] = scores(preds, data[lang].labels)
    return out


def _matrix(cfg: RunConfig, bench: Workbench, prep: Prepared, states: dict[str, State]) -> dict:
    """Accuracy of every language's own model on every evaluated language (rows: models)."""
    out: dict[str, dict[str, float]] = {}
    for model, state in states.items():
        out[model] = {}
        for lang in prep.eval_languages:
            preds = predict(bench, state, prep.test[lang], cfg.train.eval_batch_size)
            out[model][lang] = scores(preds, prep.test[lang].labels)["accuracy"]
    return out


def _default_name(cfg: RunConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    source = Path(cfg.data.source).name.replace(":", "-")
    return f"{cfg.paradigm}-{cfg.method.name}-{source}-s{cfg.seed}-{stamp}"


def run(
    cfg: RunConfig,
    *,
    resume: str | Path | None = None,
    prepared: Prepared | None = None,
    backbone: Backbone | None = None,
    log: Callable[[str], None] = print,
    grid: Grid | None = None,
    node_names: dict[int, str] | None = None,
) -> dict:
    """Run one experiment (or continue one from its run directory) and return its results.

    With `grid` (Flower's, from the ServerApp) the federated paradigm's clients are that
    grid's nodes (`node_names`: node id -> client id) instead of in-process handlers.
    """
    if resume is not None:
        rundir = RunDir(resume)
        if not rundir.config_path.exists():
            raise FileNotFoundError(f"{resume} is not a run directory (no config.toml)")
        cfg = RunConfig.load(rundir.config_path)
    else:
        cfg.validate()
        rundir = RunDir(Path(cfg.output_dir) / (cfg.name or _default_name(cfg)))
        if rundir.config_path.exists():
            raise FileExistsError(
                f"{rundir.path} already holds a run: continue it with --resume, "
                "or choose another name"
            )
        rundir.path.mkdir(parents=True, exist_ok=True)
        rundir.write_config(cfg.to_toml())
    threads = configure_threads(cfg.threads)
    show = progress_enabled(cfg.progress)
    from fedlingua.methods import make_method

    virtual = make_method(cfg.method).virtual_tokens
    prep = prepared or prepare(cfg, backbone=backbone, virtual_tokens=virtual)
    bench = build_workbench(prep.backbone, len(prep.dataset.labels), cfg)
    env = environment() | {
        "seed": cfg.seed,
        "threads": threads,
        "precision": bench.precision,
        "model_source": prep.backbone.source,
    }
    rundir.write_environment(env)

    steps_bar = tqdm(desc="client steps", unit="step", disable=not show, leave=False)
    feds = _federations(
        cfg, bench, prep, lambda: steps_bar.update(1), grid=grid, node_names=node_names
    )
    history, start_round = [], 1
    best: dict[str, tuple[float, int, State]] = {}
    ckpt = rundir.load_checkpoint() if resume is not None else None
    if ckpt is not None:
        last, states, server, progress = ckpt
        for name, fed in feds.items():
            fed.restore(states[name], server.get(name, {}))
        best = {
            name: (score, rnd, states[f"best/{name}"])
            for name, (score, rnd) in progress.get("best", {}).items()
        }
        history = rundir.truncate_metrics(last)
        start_round = last + 1
        log(f"resuming {rundir.path} after round {last}")
    elif resume is not None:
        rundir.truncate_metrics(0)

    rounds = cfg.federation.rounds
    t_run = time.perf_counter()
    try:
        with flower_log_level(logging.WARNING):
            for rnd in tqdm(range(start_round, rounds + 1), desc="rounds", disable=not show):
                record = _round(cfg, bench, prep, feds, rnd, best)
                history.append(record)
                rundir.append_metrics(record)
                states = {n: f.state for n, f in feds.items()}
                states |= {f"best/{n}": s for n, (_, _, s) in best.items()}
                rundir.save_checkpoint(
                    rnd,
                    states,
                    {n: f.server_state() for n, f in feds.items()},
                    {"best": {n: [score, r] for n, (score, r, _) in best.items()}},
                )
                log(_round_line(record))
    except KeyboardInterrupt:
        log(f"interrupted: resume with  fedlingua run --resume {rundir.path}")
        raise
    finally:
        steps_bar.close()

    results = _results(cfg, bench, prep, feds, history, best, time.perf_counter() - t_run)
    rundir.save_states("final.safetensors", {n: f.state for n, f in feds.items()})
    if best:
        rundir.save_states("best.safetensors", {n: s for n, (_, _, s) in best.items()})
    if cfg.evaluation.matrix and cfg.paradigm == "monolingual":
        results["matrix"] = _matrix(cfg, bench, prep, {n: f.state for n, f in feds.items()})
    results["run_dir"] = str(rundir.path)
    rundir.write_results(results)
    rundir.write_report(_report(cfg, results))
    return results


def _round(
    cfg: RunConfig,
    bench: Workbench,
    prep: Prepared,
    feds: dict[str, Federation],
    rnd: int,
    best: dict[str, tuple[float, int, State]],
) -> dict:
    t0 = time.perf_counter()
    outcomes: dict[str, RoundOutcome] = {name: fed.step(rnd) for name, fed in feds.items()}
    t_train = time.perf_counter() - t0
    record: dict = {"round": rnd, "federations": {n: o.to_dict() for n, o in outcomes.items()}}
    compute = sum(sum(o.client_compute_s.values()) for o in outcomes.values())
    t1 = time.perf_counter()
    if rnd % cfg.evaluation.every == 0 or rnd == cfg.federation.rounds:
        states = {n: f.state for n, f in feds.items()}
        record["test"] = _evaluate(cfg, bench, prep, states, "test")
        if cfg.evaluation.select_on_dev:
            record["dev"] = _evaluate(cfg, bench, prep, states, "dev")
            _track_best(cfg, record["dev"], feds, rnd, best)
    record["time"] = {
        "train_s": t_train,
        "client_compute_s": compute,
        "overhead_s": max(t_train - compute, 0.0),
        "evaluation_s": time.perf_counter() - t1,
    }
    return record


def _track_best(cfg, dev: dict, feds: dict[str, Federation], rnd: int, best: dict) -> None:
    for name, fed in feds.items():
        langs = [name] if cfg.paradigm == "monolingual" else list(dev)
        vals = [dev[x]["accuracy"] for x in langs if x in dev]
        if not vals:
            continue
        score = sum(vals) / len(vals)
        if name not in best or score > best[name][0]:
            best[name] = (score, rnd, {k: v.clone() for k, v in fed.state.items()})


def _round_line(record: dict) -> str:
    test = record.get("test", {})
    acc = [s["accuracy"] for s in test.values()]
    losses = [o["train_loss"] for o in record["federations"].values() if o["train_loss"]]
    failed = sum(len(o["failed"]) for o in record["federations"].values())
    parts = [f"round {record['round']}"]
    if losses:
        parts.append(f"train loss {sum(losses) / len(losses):.3f}")
    if acc:
        parts.append(f"test accuracy (mean over languages) {100 * sum(acc) / len(acc):.1f}")
    if failed:
        parts.append(f"{failed} client(s) failed")
    skipped = [o["skipped"] for o in record["federations"].values() if o.get("skipped")]
    if skipped:
        parts.append("round skipped (" + "; ".join(skipped) + ")")
    parts.append(f"{record['time']['train_s']:.1f}s train")
    return " | ".join(parts)


def _results(cfg, bench, prep, feds, history, best, wall_s) -> dict:
    evaluated = [h for h in history if "test" in h]
    final = evaluated[-1]["test"] if evaluated else {}
    selected: dict[str, int] = {}
    if best:
        per_lang = {}
        for lang in final:
            model = lang if cfg.paradigm == "monolingual" else next(iter(feds))
            rnd = best[model][1] if model in best else evaluated[-1]["round"]
            per_lang[lang] = next(h["test"][lang] for h in evaluated if h["round"] == rnd)
            selected[lang] = rnd
        final = per_lang
    train_sizes: dict[str, int] = {}
    for c in prep.clients:
        train_sizes[c.lang] = train_sizes.get(c.lang, 0) + len(prep.train[c.client_id])
    languages = {
        lang: s | {"train_examples": train_sizes.get(lang, 0)} for lang, s in final.items()
    }
    client_langs = sorted(train_sizes)
    groups = dict(
        client_languages=client_langs,
        low_resource=cfg.data.low_resource,
        zero_shot=[x for x in prep.eval_languages if x not in train_sizes],
    )
    from fedlingua.privacy.dp import account

    outcomes = [o for h in history for o in h["federations"].values()]
    up = sum(sum(o["bytes_up"].values()) for o in outcomes)
    down = sum(sum(o["bytes_down"].values()) for o in outcomes)
    per_client_up = [v for o in outcomes for v in o["bytes_up"].values()]
    train_s = sum(h["time"]["train_s"] for h in history)
    compute_s = sum(h["time"]["client_compute_s"] for h in history)
    return {
        "paradigm": cfg.paradigm,
        "method": cfg.method.name,
        "model": cfg.model.name,
        "dataset": cfg.data.source,
        "seed": cfg.seed,
        "rounds": cfg.federation.rounds,
        "strategy": cfg.federation.strategy if cfg.paradigm == "federated" else "local",
        "precision": bench.precision,
        "selected_round": selected or (evaluated[-1]["round"] if evaluated else None),
        "languages": languages,
        "averages": averages(final, **groups),
        "averages_f1": averages(final, metric="macro_f1", **groups),
        "parameters": {"trainable": bench.params.trainable, "total": bench.params.total},
        "communication": {
            "bytes_up": up,
            "bytes_down": down,
            "bytes_total": up + down,
            "bytes_up_per_client_round": max(per_client_up) if per_client_up else 0,
            "measured_from": "serialized Flower RecordDict payloads"
            if cfg.paradigm == "federated"
            else "nothing travels (local training)",
        },
        "privacy": account(cfg, history),
        "skipped_rounds": {
            str(h["round"]): "; ".join(
                o["skipped"] for o in h["federations"].values() if o.get("skipped")
            )
            for h in history
            if any(o.get("skipped") for o in h["federations"].values())
        },
        "failures": {
            str(h["round"]): {
                k: v for o in h["federations"].values() for k, v in o["failed"].items()
            }
            for h in history
            if any(o["failed"] for o in h["federations"].values())
        },
        "time": {
            "wall_s": wall_s,
            "train_s": train_s,
            "client_compute_s": compute_s,
            "evaluation_s": sum(h["time"]["evaluation_s"] for h in history),
            # in-process clients run one after another; under Flower they may overlap, and
            # then their summed compute exceeds the round time (no overhead is measurable).
            "overhead_fraction": max(train_s - compute_s, 0.0) / train_s if train_s > 0 else 0.0,
        },
    }


def _report(cfg: RunConfig, results: dict) -> str:
    comm = results["communication"]
    lines = [
        f"# {results['paradigm']} {results['method']} on {results['dataset']}",
        "",
        f"model `{results['model']}`, seed {results['seed']}, {results['rounds']} rounds "
        f"x {cfg.train.local_epochs} local epoch(s), strategy {results['strategy']}",
        "",
        language_table(results),
        f"trainable parameters: {results['parameters']['trainable']:,} of "
        f"{results['parameters']['total']:,}",
        "",
        f"communication: {comm['bytes_total'] / 1e6:.3f} MB in total "
        f"({comm['bytes_up'] / 1e6:.3f} MB up, {comm['bytes_down'] / 1e6:.3f} MB down; "
        f"{comm['measured_from']})",
        "",
        f"time: {results['time']['wall_s']:.1f} s wall, "
        f"{results['time']['client_compute_s']:.1f} s client compute, "
        f"overhead outside client compute {100 * results['time']['overhead_fraction']:.1f}%",
        "",
    ]
    if results["failures"]:
        lines += ["failed clients per round: " + str(results["failures"]), ""]
    if results.get("privacy"):
        priv = results["privacy"]
        lines += [
            f"differential privacy ({priv['dp']}, {priv['clipping']} clipping): "
            f"epsilon {priv['epsilon']:.3g} at delta {priv['delta']:g} for "
            f"{priv['privacy_unit']}; noise multiplier {priv['noise_multiplier']:.4g}, "
            f"clipping norm {priv['clipping_norm']:g}, {priv['releases']} release(s)",
            "",
        ]
    return "\n".join(lines)


def load_final_states(run_dir: str | Path, which: str = "final") -> dict[str, State]:
    """The trainable tensors a run saved (`final` or `best`), keyed by federation name."""
    return RunDir(run_dir).load_states(f"{which}.safetensors")


def evaluate_run(
    run_dir: str | Path, which: str = "final", backbone: Backbone | None = None
) -> dict:
    """Reload a run's saved tensors into a fresh model and score them on the test split."""
    cfg = RunConfig.load(RunDir(run_dir).config_path)
    from fedlingua.methods import make_method

    prep = prepare(cfg, backbone=backbone, virtual_tokens=make_method(cfg.method).virtual_tokens)
    bench = build_workbench(prep.backbone, len(prep.dataset.labels), cfg)
    states = load_final_states(run_dir, which)
    with torch.no_grad():
        return _evaluate(cfg, bench, prep, states, "test")
