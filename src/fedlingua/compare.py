"""`fedlingua compare`: several paradigm x method rows on the same data, seed and backbone.

The backbone is loaded and the data tokenized once; each row is an ordinary
run in its own run directory under the comparison folder, so an interrupted
comparison resumes row by row (finished rows are read back, a partial row
continues from its last completed round).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from fedlingua.config import (
    METHODS,
    PARADIGMS,
    CompareConfig,
    ConfigError,
    RunConfig,
    apply_override,
)
from fedlingua.engine import run
from fedlingua.experiment import Experiment, build
from fedlingua.io import write_json, write_text
from fedlingua.report import RunDir, compare_table, curves_table
from fedlingua.report.plots import (
    COMPARE,
    COMPARE_CURVES,
    compare_curves_figure,
    compare_figure,
    image_links,
    save,
)

DEFAULT_ROWS = (
    "federated:prompt-encoder",
    "monolingual:prompt-encoder",
    "centralized:prompt-encoder",
)


def parse_rows(rows: list[str]) -> list[tuple[str, str]]:
    parsed = []
    for row in rows:
        paradigm, _, method = row.partition(":")
        if paradigm not in PARADIGMS or method not in METHODS:
            raise ConfigError(
                f"compare row {row!r}: write paradigm:method with paradigm in {PARADIGMS} "
                f"and method in {METHODS}, e.g. federated:lora"
            )
        parsed.append((paradigm, method))
    return parsed


def compare(
    cfg: RunConfig,
    rows: list[str] | None = None,
    *,
    log: Callable[[str], None] = print,
) -> tuple[list[dict], str]:
    """Run (or resume) every row and return their results and the markdown table."""
    cfg.validate()
    pairs = parse_rows(list(rows or cfg.compare.rows or DEFAULT_ROWS))
    unknown = sorted(set(cfg.compare.overrides) - {f"{p}:{m}" for p, m in pairs})
    if unknown:
        raise ConfigError(f"compare.overrides names rows that are not compared: {unknown}")
    folder = Path(cfg.output_dir) / (cfg.name or "compare")
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "base-config.toml", cfg.to_toml())
    results: list[dict] = []
    shared: Experiment | None = None  # backbone, data and encodings shared by the rows
    for paradigm, method in pairs:
        row_cfg, rundir = _row_run(cfg, paradigm, method)
        row_cfg.validate()
        if rundir.config_path.exists() and not _same_row(rundir.config_path, row_cfg):
            raise ConfigError(
                f"{rundir.path} holds a run with a different config: choose another "
                "name (or output_dir) for this comparison, or delete that folder"
            )
        done = rundir.results()
        if done is not None:
            log(f"== {paradigm} {method}: already done, read from {rundir.path}")
            results.append(done)
            continue
        log(f"== {paradigm} {method}")
        shared = build(row_cfg, reuse=shared)
        resume = rundir.path if rundir.config_path.exists() else None
        results.append(run(row_cfg, resume=resume, experiment=shared, log=log))
    table = compare_table(results)
    write_json(folder / "compare.json", {"rows": results})
    save(compare_figure(results), folder / COMPARE)
    save(compare_curves_figure(results), folder / COMPARE_CURVES)
    curves = "## Learning curves (mean accuracy, %)\n\n" + curves_table(results)
    write_text(
        folder / "compare.md",
        _header(cfg, pairs) + table + "\n" + curves + "\n" + image_links([COMPARE, COMPARE_CURVES]),
    )
    return results, table


def stored_row_matches(cfg: RunConfig, paradigm: str, method: str) -> bool:
    """Whether the comparison `cfg` holds a run of this row with the row's current config
    (False when the row has no run yet or was run with other settings)."""
    row_cfg, rundir = _row_run(cfg, paradigm, method)
    return rundir.config_path.exists() and _same_row(rundir.config_path, row_cfg)


def _row_run(cfg: RunConfig, paradigm: str, method: str) -> tuple[RunConfig, RunDir]:
    """A row's config, named and placed in the comparison's folder, and its run directory."""
    folder = Path(cfg.output_dir) / (cfg.name or "compare")
    row_cfg = _row_config(cfg, paradigm, method)
    row_cfg.output_dir, row_cfg.name = str(folder), f"{paradigm}-{method}"
    return row_cfg, RunDir(folder / row_cfg.name)


def _row_config(cfg: RunConfig, paradigm: str, method: str) -> RunConfig:
    """The shared config with this row's paradigm, method and own overrides."""
    raw = copy.deepcopy(cfg.to_dict())
    raw["paradigm"], raw["method"]["name"] = paradigm, method
    for item in cfg.compare.overrides.get(f"{paradigm}:{method}", []):
        apply_override(raw, item)
    return RunConfig.from_dict(raw)


def _same_row(stored: Path, row_cfg: RunConfig) -> bool:
    """Whether a row's stored config is `row_cfg`, the `compare` section aside: that section
    holds the settings of the rows compared with it, which a comparison of fewer rows (two
    processes running disjoint rows, or one row resumed alone) lists differently."""
    if stored.read_text() == row_cfg.to_toml():
        return True
    old, new = RunConfig.load(stored), copy.deepcopy(row_cfg)
    old.compare = new.compare = CompareConfig()
    return old.to_toml() == new.to_toml()


def _header(cfg: RunConfig, pairs: list[tuple[str, str]]) -> str:
    t, ev = cfg.train, cfg.evaluation
    local = f"{t.local_steps} local steps" if t.local_steps else f"{t.local_epochs} local epoch(s)"
    rounds = f"{cfg.federation.rounds} rounds"
    if ev.patience is not None:
        rounds = f"at most {rounds} (early stopping: patience {ev.patience} on dev)"
    chosen = "the best dev round" if ev.select_on_dev else "the last round"
    return (
        f"# fedlingua compare on {cfg.data.source} with {cfg.model.name}\n\n"
        f"seed {cfg.seed}; {rounds} x {local}, scores of {chosen}; rows: "
        f"{', '.join(f'{p} {m}' for p, m in pairs)}; accuracy in %, "
        "MB communicated measured from serialized payloads.\n\n"
    )
