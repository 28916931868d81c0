"""`run`: the rounds of one experiment, with evaluation, checkpoints and resume.

Each round steps every federation of the topology once, evaluates the models on
test (with dev selection: on dev only; each model's state at its best dev round is kept
and scored on test once, at the end, since only that round is ever reported), appends a
record to `metrics.jsonl` and checkpoints the trainable state, the strategies' server
state and the best models so far. A resumed run restores that checkpoint and continues bit-exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tqdm.auto import tqdm

from fedlingua.config import ConfigError, RunConfig
from fedlingua.engine.federations import ClientHandler, build_federations, simulated_coordinator
from fedlingua.engine.personalize import personalize
from fedlingua.engine.results import report, results_of, round_line, scored
from fedlingua.experiment import Coordinator, Experiment, build
from fedlingua.models import Backbone
from fedlingua.report import RunDir
from fedlingua.report.plots import write_run_files
from fedlingua.runtime import (
    configure_threads,
    device_name,
    environment,
    flower_log_level,
    progress_enabled,
)
from fedlingua.training import State


@dataclass
class Progress:
    """What a run has done so far: its records and the best round per model on dev."""

    history: list[dict] = field(default_factory=list)
    best: dict[str, tuple[float, int, State]] = field(default_factory=dict)  # score, round
    start_round: int = 1
    # dev scores of models that stopped training: their tensors no longer change, so a
    # later round reuses the scores instead of scoring the same model again
    stopped_dev: dict[str, dict[str, dict]] = field(default_factory=dict)


def run(
    cfg: RunConfig,
    *,
    resume: str | Path | None = None,
    experiment: Experiment | None = None,
    backbone: Backbone | None = None,
    log: Callable[[str], None] = print,
    coordinator: Coordinator | None = None,
    client_handler: ClientHandler | None = None,
) -> dict:
    """Run one experiment (or continue one from its run directory) and return its results.

    In-process (the default) the experiment's sites become the nodes of an in-process grid
    (`experiment`: an already built experiment of this config, e.g. `compare` sharing data
    between rows); with `coordinator` (the ServerApp's, on Flower's grid, after its roll
    call) the SuperNodes are the sites. Either way training and evaluation are messages
    to the sites. `client_handler` replaces the in-process client update.
    """
    cfg, rundir = _open(cfg, resume)
    threads = configure_threads(cfg.threads)
    show = progress_enabled(cfg.progress)
    steps_bar = tqdm(desc="client steps", unit="step", disable=not show, leave=False)
    coord = coordinator
    if coord is None:
        exp = experiment if experiment is not None else build(cfg, backbone=backbone)
        coord = simulated_coordinator(exp, lambda: steps_bar.update(1), client_handler)
    rundir.write_environment(_environment(coord, threads))
    rundir.write_sites(coord.roster.to_dict())
    feds = build_federations(coord)
    progress = _restore(rundir, feds, resume, log)
    # The run's wall time spans its sittings: the rounds an earlier sitting ran count with
    # their recorded train and evaluation time.
    t_run = time.perf_counter() - _recorded_s(progress.history)
    try:
        with flower_log_level(logging.WARNING):
            rounds = range(progress.start_round, cfg.federation.rounds + 1)
            for rnd in tqdm(rounds, desc="rounds", disable=not show):
                active = _active(cfg, list(feds), rnd, progress)
                if not active:
                    log(f"early stopping before round {rnd}: no model improved on dev")
                    break
                joined = coord.refresh()  # a restarted SuperNode's site, back under a new id
                for note in joined:
                    log(f"round {rnd}: {note}")
                record = _round(coord, feds, active, rnd, progress)
                if joined:
                    record["membership"] = joined
                rundir.append_metrics(record)
                _checkpoint(rundir, feds, rnd, progress)
                log(round_line(record))
    except KeyboardInterrupt:
        log(f"interrupted: resume with  fedlingua run --resume {rundir.path}")
        raise
    finally:
        steps_bar.close()
    return _finish(coord, rundir, feds, progress, t_run)


def _recorded_s(history: list[dict]) -> float:
    return sum(h.get("time", {}).get(k, 0.0) for h in history for k in ("train_s", "evaluation_s"))


def _environment(exp: Coordinator, threads: int) -> dict:
    """environment.json: versions, seed, threads, precision and device actually used."""
    return environment() | {
        "seed": exp.cfg.seed,
        "threads": threads,
        "precision": exp.bench.precision,
        "device": str(exp.bench.device),
        "device_name": device_name(exp.bench.device),
        "model_source": exp.backbone.source,
    }


def _open(cfg: RunConfig, resume: str | Path | None) -> tuple[RunConfig, RunDir]:
    """The run's config and directory: the stored ones to resume, else a new directory."""
    if resume is not None:
        rundir = RunDir(resume)
        if not rundir.config_path.exists():
            raise FileNotFoundError(f"{resume} is not a run directory (no config.toml)")
        return RunConfig.load(rundir.config_path), rundir
    cfg.validate()
    root = Path(cfg.output_dir).resolve()
    rundir = RunDir(root / (cfg.name or _default_name(cfg)))
    if rundir.path.resolve().parent != root:  # names are checked; links are not
        raise ConfigError(f"the run directory {rundir.path} is not a folder of {root}")
    if rundir.config_path.exists():
        raise FileExistsError(
            f"{rundir.path} already holds a run: continue it with --resume, or choose another name"
        )
    rundir.path.mkdir(parents=True, exist_ok=True)
    rundir.write_config(cfg.to_toml())
    return cfg, rundir


def _default_name(cfg: RunConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    source = Path(cfg.data.source).name.replace(":", "-")
    return f"{cfg.paradigm}-{cfg.method.name}-{source}-s{cfg.seed}-{stamp}"


def _restore(rundir: RunDir, feds: dict, resume, log: Callable[[str], None]) -> Progress:
    """Progress after the last checkpoint (federations restored to it), or a fresh start."""
    ckpt = rundir.load_checkpoint() if resume is not None else None
    if ckpt is None:
        if resume is not None:
            rundir.truncate_metrics(0)
        return Progress()
    last, states, server, saved = ckpt
    for name, fed in feds.items():
        fed.restore(states[name], server.get(name, {}))
    best = {
        name: (score, rnd, states[f"best/{name}"])
        for name, (score, rnd) in saved.get("best", {}).items()
    }
    log(f"resuming {rundir.path} after round {last}")
    return Progress(rundir.truncate_metrics(last), best, last + 1)


def _active(cfg: RunConfig, models: list[str], rnd: int, progress: Progress) -> list[str]:
    """The models that still train in round `rnd`: all of them, or with early stopping
    those whose dev accuracy improved within the last `evaluation.patience` evaluations
    (derived from the checkpointed best rounds, so a resumed run stops where it would).
    No model stops before round `evaluation.min_rounds`."""
    patience = cfg.evaluation.patience
    if patience is None or rnd <= cfg.evaluation.min_rounds:
        return models
    every = cfg.evaluation.every
    return [
        m
        for m in models
        if m not in progress.best or (rnd - 1 - progress.best[m][1]) // every < patience
    ]


def _round(exp: Coordinator, feds: dict, active: list[str], rnd: int, progress: Progress) -> dict:
    """Step the active federations once, evaluate every model, and record the round."""
    cfg = exp.cfg
    t0 = time.perf_counter()
    outcomes = {name: feds[name].step(rnd) for name in active}
    t_train = time.perf_counter() - t0
    record: dict = {"round": rnd, "federations": {n: o.to_dict() for n, o in outcomes.items()}}
    compute = sum(sum(o.client_compute_s.values()) for o in outcomes.values())
    t1 = time.perf_counter()
    if rnd % cfg.evaluation.every == 0 or rnd == cfg.federation.rounds:
        states = {n: f.state for n, f in feds.items()}
        if cfg.evaluation.select_on_dev:  # test only the selected models, once, at the end
            record["dev"] = _evaluate_dev(exp, states, active, progress)
            _track_best(exp, record["dev"], feds, rnd, progress.best)
        else:
            record["test"] = exp.evaluate(states, "test")
        if exp.failures:  # sites that could not score: their languages are missing this round
            record["evaluation_failures"] = dict(exp.failures)
    record["time"] = {
        "train_s": t_train,
        "client_compute_s": compute,
        "overhead_s": max(t_train - compute, 0.0),
        "evaluation_s": time.perf_counter() - t1,
    }
    progress.history.append(record)
    return record


def _evaluate_dev(exp: Coordinator, states: dict, active: list[str], progress: Progress) -> dict:
    """Dev scores of every model; a stopped model is scored once after it stopped and its
    scores reused while it stays stopped (its tensors are unchanged: the same scores)."""
    cache = progress.stopped_dev
    for name in active:
        cache.pop(name, None)  # trains again (a late best round): score it afresh
    fresh = {n: s for n, s in states.items() if n in active or n not in cache}
    dev = exp.evaluate(fresh, "dev")
    for name in fresh:
        if name not in active:
            cache[name] = {x: dev[x] for x in dev if exp.model_for(x) == name}
    for scores in cache.values():
        dev |= scores
    return {x: dev[x] for x in exp.eval_languages if x in dev}


def _track_best(exp: Coordinator, dev: dict, feds: dict, rnd: int, best: dict) -> None:
    """Keep each model whose dev accuracy beat its best so far (a copy of its state).
    Selection reads the dev sets of languages that have clients only: zero-shot languages
    stay unseen, their dev sets included."""
    trained = set(exp.train_sizes())
    seen = [x for x in dev if x in trained] or list(dev)
    for name, fed in feds.items():
        langs = exp.topology.selection_languages(name, seen)
        vals = [dev[x]["accuracy"] for x in langs if x in dev]
        if not vals:
            continue
        score = sum(vals) / len(vals)
        if name not in best or score > best[name][0]:
            best[name] = (score, rnd, {k: v.clone() for k, v in fed.state.items()})


def _checkpoint(rundir: RunDir, feds: dict, rnd: int, progress: Progress) -> None:
    states = {n: f.state for n, f in feds.items()}
    states |= {f"best/{n}": s for n, (_, _, s) in progress.best.items()}
    rundir.save_checkpoint(
        rnd,
        states,
        {n: f.server_state() for n, f in feds.items()},
        {"best": {n: [score, r] for n, (score, r, _) in progress.best.items()}},
    )


def _finish(exp: Coordinator, rundir: RunDir, feds: dict, progress: Progress, started: float):
    """Final tensors, best tensors, results.json and report.md of a finished run; its wall
    time (since `started`) includes this final scoring (`time.final_s`)."""
    t_final = time.perf_counter()
    finals = {n: f.state for n, f in feds.items()}
    reported = {n: progress.best[n][2] if n in progress.best else s for n, s in finals.items()}
    selected_test = exp.evaluate(reported, "test") if exp.cfg.evaluation.select_on_dev else None
    results = results_of(exp, progress.history, progress.best, t_final - started, selected_test)
    rundir.save_states("final.safetensors", finals)
    if progress.best:
        rundir.save_states("best.safetensors", {n: s for n, (_, _, s) in progress.best.items()})
    ev = exp.cfg.evaluation
    if ev.matrix and exp.topology.per_language:
        results["matrix"] = exp.matrix(reported)  # the models the table reports
    if ev.language_prior:
        results["prior_adjusted"] = scored(exp, exp.evaluate(reported, language_prior=True))
    if ev.personalize > 0:
        results["personalized"] = personalize(exp, reported, ev.personalize)
    now = time.perf_counter()
    results["time"] |= {"final_s": now - t_final, "wall_s": now - started}
    results["run_dir"] = str(rundir.path)
    rundir.write_sites(exp.roster.to_dict())  # with the nodes refused along the way
    rundir.write_results(results)
    rundir.write_report(report(exp.cfg, results))
    write_run_files(rundir.path, exp.labels, exp.cfg.data.low_resource)
    return results
