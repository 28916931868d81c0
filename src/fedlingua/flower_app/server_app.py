"""The Flower ServerApp: the coordinator of a federated run, holding no data.

It reads the fedlingua run config from `context.run_config`, loads the model (for the
initial tensors and their shapes: no dataset is read, no text encoded), asks every
SuperNode who it is (the roll call: client id, languages, training examples, label
names; `sites` in the run config is how many to wait for), fixes the label list, then
hands the coordinator to `fedlingua.engine.run`. So the rounds are `Federation.step`
driving the configured Flower strategy, dev and test are scored on the sites (EVALUATE
messages; the server adds up their counts), and the run directory (config.toml,
sites.json, metrics.jsonl, checkpoints, final.safetensors, results.json, report.md) is
the one the in-process run writes.

Resuming after the server died: run the App again with the same fedlingua config
and the run-config key `resume` set to the run directory (an absolute path, e.g.
`scripts/federation.sh run --resume runs/<name>`). The run continues after the last
checkpointed round (global tensors, strategy state, round number), with a fresh
roll call: SuperNodes may have new node ids. A config that differs from the one
stored in the run directory is refused.
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedlingua.config import ConfigError, RunConfig
from fedlingua.engine import run
from fedlingua.experiment import coordinate
from fedlingua.federation.rollcall import WAIT_HINT
from fedlingua.flower_app.task import load_run_config
from fedlingua.report import RunDir

WAIT_KEY = WAIT_HINT
SITES_KEY = "sites"  # how many sites the roll call waits for (0: every connected node)
RESUME_KEY = "resume"

app = ServerApp()


def resumable(cfg: RunConfig, run_dir: str) -> Path:
    """The run directory to continue, once it is known to hold a run of exactly `cfg`."""
    path = Path(run_dir)
    if not path.is_absolute():
        raise ConfigError(f"{RESUME_KEY}={run_dir!r}: give the run directory as an absolute path")
    if path.resolve().parent != Path(cfg.output_dir).resolve():
        raise ConfigError(f"{RESUME_KEY}: not a run directory under the config's output_dir")
    config = RunDir(path).config_path
    if not config.exists():
        raise ConfigError(f"{RESUME_KEY}={run_dir!r} is not a run directory (no config.toml)")
    if RunConfig.load(config).to_toml() != cfg.to_toml():
        raise ConfigError(
            f"{run_dir} holds a run of another config: resume with the fedlingua config and "
            "overrides the run was started with"
        )
    return path


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = load_run_config(context.run_config)
    resume = str(context.run_config.get(RESUME_KEY, "") or "")
    run_dir = resumable(cfg, resume) if resume else None
    wait_s = float(context.run_config.get(WAIT_KEY, 300))
    expected = int(context.run_config.get(SITES_KEY, 0) or 0) or None
    coord = coordinate(cfg, grid, expected=expected, wait_s=wait_s)
    # print, not Flower's logger: the run quiets that logger below WARNING during rounds
    results = run(cfg, resume=run_dir, coordinator=coord, log=print)
    print(f"fedlingua run directory: {Path(results['run_dir']).resolve()}")
