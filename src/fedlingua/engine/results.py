"""The results of a run: scores per language, averages, communication, privacy, time; its
report; and re-scoring a finished run from its saved tensors."""

from __future__ import annotations

from pathlib import Path

import torch

from fedlingua.config import RunConfig
from fedlingua.evaluation import averages
from fedlingua.experiment import Coordinator, Experiment, build
from fedlingua.models import Backbone
from fedlingua.report import RunDir, language_table
from fedlingua.training import State


def results_of(
    exp: Coordinator,
    history: list[dict],
    best: dict,
    wall_s: float,
    selected_test: dict | None = None,
) -> dict:
    """results.json of a finished run (`best`: model -> (dev score, round, state);
    `selected_test`: with dev selection, the test scores of the selected models)."""
    cfg = exp.cfg
    final, selected = _reported_scores(exp, history, best, selected_test)
    from fedlingua.privacy.dp import account

    return {
        "paradigm": cfg.paradigm,
        "method": cfg.method.name,
        "model": cfg.model.name,
        "dataset": cfg.data.source,
        "seed": cfg.seed,
        "rounds": cfg.federation.rounds,
        "rounds_run": history[-1]["round"] if history else 0,
        "stopped_early": cfg.evaluation.patience is not None
        and bool(history)
        and history[-1]["round"] < cfg.federation.rounds,
        "strategy": "local" if exp.topology.local else cfg.federation.strategy,
        "precision": exp.bench.precision,
        "selected_round": selected,
        **scored(exp, final),
        "curve": _curve(history),
        "parameters": {"trainable": exp.bench.params.trainable, "total": exp.bench.params.total},
        "communication": _communication(exp, history),
        "privacy": account(cfg, history),
        "skipped_rounds": _skipped(history),
        "failures": _failures(history),
        "time": _times(history, wall_s),
    }


def scored(exp: Coordinator | Experiment, per_language: dict[str, dict]) -> dict:
    """Per-language scores (with training sizes) and their group averages."""
    sizes = exp.train_sizes()
    groups = dict(
        client_languages=sorted(sizes),
        low_resource=exp.cfg.data.low_resource,
        zero_shot=[x for x in exp.eval_languages if x not in sizes],
    )
    return {
        "languages": {
            lang: s | {"train_examples": sizes.get(lang, 0)} for lang, s in per_language.items()
        },
        "averages": averages(per_language, **groups),
        "averages_f1": averages(per_language, metric="macro_f1", **groups),
    }


def _curve(history: list[dict]) -> list[dict]:
    """Mean accuracy over languages per evaluated round: the learning curve (on dev with
    dev selection, which scores test only for the selected round; on test otherwise)."""

    def mean(split: dict) -> float:
        return sum(s["accuracy"] for s in split.values()) / len(split) if split else None

    return [
        {"round": h["round"]} | {k: mean(h[k]) for k in ("dev", "test") if k in h}
        for h in history
        if "test" in h or "dev" in h
    ]


def _reported_scores(
    exp: Coordinator, history: list[dict], best: dict, selected_test: dict | None
) -> tuple[dict, object]:
    """Test scores per language and the round they come from: the last evaluated round, or
    with dev selection each language's serving model's best dev round."""
    evaluated = [h for h in history if "test" in h or "dev" in h]
    last = evaluated[-1]["round"] if evaluated else None
    if selected_test is None:
        return (evaluated[-1].get("test", {}) if evaluated else {}), last
    selected = {
        lang: best[exp.model_for(lang)][1] if exp.model_for(lang) in best else last
        for lang in selected_test
    }
    return selected_test, selected or last


def _communication(exp: Coordinator, history: list[dict]) -> dict:
    outcomes = [o for h in history for o in h["federations"].values()]
    up = sum(sum(o["bytes_up"].values()) for o in outcomes)
    down = sum(sum(o["bytes_down"].values()) for o in outcomes)
    per_client_up = [v for o in outcomes for v in o["bytes_up"].values()]
    return {
        "bytes_up": up,
        "bytes_down": down,
        "bytes_total": up + down,
        "bytes_up_per_client_round": max(per_client_up) if per_client_up else 0,
        "measured_from": "nothing travels (local training)"
        if exp.topology.local
        else "serialized Flower RecordDict payloads",
    }


def _skipped(history: list[dict]) -> dict[str, str]:
    return {
        str(h["round"]): "; ".join(
            o["skipped"] for o in h["federations"].values() if o.get("skipped")
        )
        for h in history
        if any(o.get("skipped") for o in h["federations"].values())
    }


def _failures(history: list[dict]) -> dict[str, dict]:
    return {
        str(h["round"]): {k: v for o in h["federations"].values() for k, v in o["failed"].items()}
        for h in history
        if any(o["failed"] for o in h["federations"].values())
    }


def _times(history: list[dict], wall_s: float) -> dict:
    train_s = sum(h["time"]["train_s"] for h in history)
    compute_s = sum(h["time"]["client_compute_s"] for h in history)
    return {
        "wall_s": wall_s,
        "train_s": train_s,
        "client_compute_s": compute_s,
        "evaluation_s": sum(h["time"]["evaluation_s"] for h in history),
        # in-process clients run one after another; under Flower they may overlap, and
        # then their summed compute exceeds the round time (no overhead is measurable).
        "overhead_fraction": max(train_s - compute_s, 0.0) / train_s if train_s > 0 else 0.0,
    }


def round_line(record: dict) -> str:
    """One log line per round: train loss, mean accuracy (dev where the run selects on dev,
    else test), failures, skips, time."""
    split = "dev" if "dev" in record else "test"
    acc = [s["accuracy"] for s in record.get(split, {}).values()]
    losses = [o["train_loss"] for o in record["federations"].values() if o["train_loss"]]
    failed = sum(len(o["failed"]) for o in record["federations"].values())
    parts = [f"round {record['round']}"]
    if losses:
        parts.append(f"train loss {sum(losses) / len(losses):.3f}")
    if acc:
        parts.append(f"{split} accuracy (mean over languages) {100 * sum(acc) / len(acc):.1f}")
    if failed:
        parts.append(f"{failed} client(s) failed")
    skipped = [o["skipped"] for o in record["federations"].values() if o.get("skipped")]
    if skipped:
        parts.append("round skipped (" + "; ".join(skipped) + ")")
    parts.append(f"{record['time']['train_s']:.1f}s train")
    return " | ".join(parts)


def report(cfg: RunConfig, results: dict) -> str:
    """report.md of a run."""
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
    lines += _flags(results)
    if results["failures"]:
        lines += ["failed clients per round: " + str(results["failures"]), ""]
    if results.get("privacy"):
        priv = results["privacy"]
        spent = (
            f"epsilon {priv['epsilon']:.3g} at delta {priv['delta']:g}"
            if priv["epsilon"] is not None
            else "no epsilon (noise seeded from the run seed: anyone with the config recomputes it)"
        )
        lines += [
            f"differential privacy ({priv['dp']}, {priv['clipping']} clipping): {spent} for "
            f"{priv['privacy_unit']}; noise multiplier {priv['noise_multiplier']:.4g}, "
            f"clipping norm {priv['clipping_norm']:g}, {priv['releases']} release(s)",
            "",
        ]
    return "\n".join(lines)


def _flags(results: dict) -> list[str]:
    """Report lines on what the global numbers hide: classes a model never predicts,
    early stopping, and the separately reported prior-adjusted and personalized scores."""
    lines = []
    for lang, s in results["languages"].items():
        if s.get("never_predicted"):
            lines.append(
                f"- **{lang}: the model never predicts {', '.join(s['never_predicted'])}**"
            )
    if results.get("stopped_early"):
        lines.append(f"- early stopping after round {results['rounds_run']} of {results['rounds']}")
    for key, label in (("prior_adjusted", "prior-adjusted"), ("personalized", "personalized")):
        if key in results:
            avg = results[key]["averages"]
            extra = ""
            if key == "personalized":
                extra = f" ({results[key]['steps']} extra local steps per client, "
                extra += f"{results[key]['compute_s']:.1f} s extra compute)"
            low = avg.get("low_resource_average")
            lines.append(
                f"- {label} average accuracy {100 * avg['average']:.1f}"
                + (f", low-resource {100 * low:.1f}" if low is not None else "")
                + extra
                + " — reported separately, not part of the table above"
            )
    return [*lines, ""] if lines else []


def load_final_states(run_dir: str | Path, which: str = "final") -> dict[str, State]:
    """The trainable tensors a run saved (`final` or `best`), keyed by model name."""
    return RunDir(run_dir).load_states(f"{which}.safetensors")


def evaluate_run(
    run_dir: str | Path, which: str = "final", backbone: Backbone | None = None
) -> dict:
    """Reload a run's saved tensors into a fresh model and score them on the test split."""
    cfg = RunConfig.load(RunDir(run_dir).config_path)
    exp = build(cfg, backbone=backbone)
    states = load_final_states(run_dir, which)
    with torch.no_grad():
        return exp.evaluate(states, "test")
