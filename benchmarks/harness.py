"""What the benchmark scripts share: building a run as the engine does, timing the engine's own
client update, and writing a results file pair.

Benchmarks time and call the engine's functions; they never re-implement a training step.
The scripts run as `.venv/bin/python benchmarks/<name>.py`, which puts this folder first on
sys.path, so `import harness` finds this module from a fresh clone.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fedlingua is imported where used: writing results needs no torch
    from fedlingua.config import RunConfig
    from fedlingua.data import EncodedSplit
    from fedlingua.training import UpdateResult, Workbench

RESULTS = Path(__file__).resolve().parent / "results"
WARMUP_STEPS = 2  # the first steps of a process warm up allocators and kernels


def override_items(settings: dict) -> list[str]:
    """`key=value` overrides (values as JSON) for RunConfig.load or compare.overrides."""
    return [f"{k}={json.dumps(v)}" for k, v in settings.items()]


def one_thread_per_run() -> int:
    """Run the benchmark's trainings on one torch thread unless $FEDLINGUA_THREADS says
    otherwise (two sittings then share the two cores), and set it now, so that the
    environment written with the results names the runs' thread count."""
    from fedlingua.runtime import configure_threads

    os.environ.setdefault("FEDLINGUA_THREADS", "1")
    return configure_threads()


def client_updates(
    bench: Workbench, cfg: RunConfig, data: EncodedSplit, seeds: Iterable[int]
) -> tuple[float, list[UpdateResult]]:
    """One engine client update (`local_update`: one epoch over `data`, the run config's
    learning rate, weight decay, clipping and batch size, the workbench's precision) per
    seed, each from the same starting state, after a discarded warm-up update of
    WARMUP_STEPS steps. Returns (seconds of the warm-up update, the measured updates)."""
    from fedlingua.training import local_update

    t = cfg.train
    start = bench.get_state()
    hyper = {
        "epochs": 1,
        "batch_size": t.batch_size,
        "lr": t.lr or bench.method.default_lr,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
    }
    warm = local_update(bench, start, data, seed=cfg.seed, max_steps=WARMUP_STEPS, **hyper)
    return warm.compute_s, [local_update(bench, start, data, seed=s, **hyper) for s in seeds]


def update_rates(results: list[UpdateResult]) -> dict:
    """Per-step time and samples/s of one-epoch updates (medians over the updates): every
    example is trained on once per update, in `steps` optimizer steps."""
    return {
        "median_step_s": statistics.median(r.compute_s / r.steps for r in results),
        "samples_per_s": statistics.median(r.num_examples / r.compute_s for r in results),
        "steps_measured": sum(r.steps for r in results),
        "updates_measured": len(results),
    }


OTHER_SETTINGS = " (run with other settings)"
"""Appended to a pending row's name when that row was run with other settings than
today's recipe gives it (a dev choice changed since)."""


def recorded(path: Path, **expected) -> dict:
    """The results file a report is about to rewrite, as last written: the committed record
    of every finished row. A report takes from it the rows whose run directories are not on
    this machine (a fresh clone, another machine), so rewriting it never drops a finished
    figure. {} when the file is absent or any of `expected` (recipe, overrides, languages...)
    differs from what the file records: rows made with other settings are not reused."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    # The JSON round trip compares tuples and lists, int and str keys as the file stores them.
    same = all(json.loads(json.dumps(v)) == data.get(k) for k, v in expected.items())
    return data if same else {}


def rows_to_run(
    rows: list[str], *, here: Callable[[str], bool], kept: Callable[[str], bool]
) -> list[str]:
    """The rows a sitting runs: all but those the results file keeps with today's settings
    (`kept`) and that have no run directory here (`here`; such a directory is resumed, or
    read back by `compare`)."""
    return [r for r in rows if here(r) or not kept(r)]


def write_results(name: str, data: dict, lines: list[str], folder: Path = RESULTS) -> None:
    """Write `<name>.json` (the figures) and `<name>.md` (the report lines) into `folder`
    and print the report."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
