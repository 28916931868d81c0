"""The Flower ServerApp: the in-process federated run, with Flower's grid in place of ours.

It reads the fedlingua run config from `context.run_config`, prepares the model and
the evaluation data like the in-process run, asks every SuperNode which client it
plays (a QUERY roll call: one node per client, or a clear error before any
training), then hands Flower's `grid` to `fedlingua.engine.run`. So the rounds
are `Federation.step` driving the configured Flower strategy, the global model is
evaluated per language after each round, and the run directory (config.toml,
metrics.jsonl, checkpoints, final.safetensors, results.json, report.md) is the
one the in-process run writes.

Resuming after the server died: run the App again with the same fedlingua config
and the run-config key `resume` set to the run directory (an absolute path, e.g.
`scripts/federation.sh run --resume runs/<name>`). The run continues after the last
checkpointed round (global tensors, strategy state, round number), with a fresh
roll call: SuperNodes may have new node ids. A config that differs from the one
stored in the run directory is refused.
"""

from __future__ import annotations

import time
from pathlib import Path

from flwr.app import Context, Message, MessageType, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp

from fedlingua.config import ConfigError, RunConfig
from fedlingua.engine import run
from fedlingua.experiment import build
from fedlingua.federation.payload import CLIENT_KEY
from fedlingua.flower_app.task import load_run_config
from fedlingua.report import RunDir

WAIT_KEY = "wait-for-nodes-s"
RESUME_KEY = "resume"

app = ServerApp()


def roll_call(grid: Grid, client_ids: list[str], wait_s: float) -> dict[int, str]:
    """Node id -> client id, once every client's SuperNode is connected and has answered.

    A node the SuperLink still lists but that sends no heartbeats (a SuperNode killed just
    before, or one the SuperLink's state kept across its own restart) is answered for by the
    SuperLink with NODE_UNAVAILABLE, or its query is not delivered at all: it is left out,
    and the roll call is repeated until every client has answered or `wait_s` passed. Any
    other error from a node is final.
    """
    deadline = time.monotonic() + wait_s
    while True:
        names, missing = _ask(grid, client_ids, deadline, wait_s)
        claimed = sorted(names.values())
        if claimed == sorted(client_ids):
            return names
        if not missing:
            raise RuntimeError(
                f"the SuperNodes play clients {claimed}, the config has {sorted(client_ids)}: "
                "give each SuperNode a distinct partition-id in 0..num-partitions-1"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(names)} of {len(names) + len(missing)} SuperNodes answered the roll call "
                f"within {wait_s:.0f}s, none from {sorted(missing)} "
                f"({'; '.join(sorted(set(missing.values())))}): raise {WAIT_KEY}"
            )
        time.sleep(2.0)


def _ask(
    grid: Grid, client_ids: list[str], deadline: float, wait_s: float
) -> tuple[dict[int, str], dict[int, str]]:
    """One roll call of the connected nodes: node -> client id, and node -> why it did not
    answer (unavailable, or no answer)."""
    while len(nodes := list(grid.get_node_ids())) < len(client_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(nodes)} SuperNode(s) connected after {wait_s:.0f}s; the config needs "
                f"{len(client_ids)} (one per client: {client_ids})"
            )
        time.sleep(1.0)
    asks = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes]
    # a node answers once it has prepared its client (model + data): allow at least a minute
    timeout = max(deadline - time.monotonic(), 60.0)
    names: dict[int, str] = {}
    why = "no answer"
    for reply in grid.send_and_receive(asks, timeout=timeout):
        node = reply.metadata.src_node_id  # for the SuperLink's own errors: the SuperLink
        if reply.has_error() and reply.error.code == ErrorCode.NODE_UNAVAILABLE:
            why = f"unavailable or no answer: {reply.error.reason}"
        elif reply.has_error():
            raise RuntimeError(f"SuperNode {node} cannot play a client: {reply.error.reason}")
        else:
            names[node] = str(reply.content[CLIENT_KEY]["client-id"])
    return names, {n: why for n in nodes if n not in names}


def resumable(cfg: RunConfig, run_dir: str) -> Path:
    """The run directory to continue, once it is known to hold a run of exactly `cfg`."""
    path = Path(run_dir)
    if not path.is_absolute():
        raise ConfigError(f"{RESUME_KEY}={run_dir!r}: give the run directory as an absolute path")
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
    exp = build(cfg)
    wait_s = float(context.run_config.get(WAIT_KEY, 300))
    names = roll_call(grid, [c.client_id for c in exp.clients], wait_s)
    # print, not Flower's logger: the run quiets that logger below WARNING during rounds
    results = run(cfg, resume=run_dir, experiment=exp, grid=grid, node_names=names, log=print)
    print(f"fedlingua run directory: {Path(results['run_dir']).resolve()}")
