"""Secure aggregation with Flower's SecAgg+ protocol: the server obtains only the sum.

With `privacy.secure_aggregation = true` a federated round is Flower's
`SecAggPlusWorkflow` (server) talking to Flower's `secaggplus_mod` (every client):

    stage 0  setup                 clients make two key pairs, send the public keys
    stage 1  share keys            each client Shamir-shares its mask seed and secret key
                                   among its neighbours (encrypted for each of them)
    stage 2  collect masked vecs   each client trains (fedlingua's own client update),
                                   then sends its example-weighted, quantized tensors
                                   plus a private mask and pairwise masks: uniformly
                                   random integers mod 2^32 to anyone without the keys
    stage 3  unmask                survivors send shares: the server removes the masks
                                   and learns only the sum (a client that dropped out
                                   after stage 1 has its pairwise masks rebuilt from
                                   its neighbours' shares, so the round survives it)

The workflow speaks Flower's legacy records (`fitins.*` / `fitres.*`), so the server side
runs it through a `LegacyContext` with Flower's legacy FedAvg (it only sees the already
aggregated vector), and the client side translates those records to and from
`fedlingua.federation.client.handle_train`: the same client update as every other run.
`SecAggFederation` is a `fedlingua.federation.server.Federation` whose round exchange is
the SecAgg+ workflow, so the paradigm engine, the run directory and the Flower ServerApp
use it unchanged; it also records every payload's size and, for audits, can keep every
message the server received.

Threat model: an honest-but-curious server and fewer colluding clients than the
reconstruction threshold (SecAgg+, Bell et al. 2020). Flower relays the clients' public
keys through the server without a PKI, so a server that actively forges keys is out of
scope.

Limits: updates are quantized (`secagg_clipping_range`, 2^22 levels; parameters outside
[-r, r] are clipped); the server still sees each client's number of examples and scalar
metrics in clear (Flower's FitRes metadata); SecAgg+ cannot be combined with
`privacy.dp` here yet (Flower's DP wrappers for this path are its legacy strategies).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.common import (
    Code,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common import recorddict_compat as compat
from flwr.server.client_manager import SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.server_config import ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import SecAggPlusWorkflow
from flwr.serverapp import Grid

from fedlingua.config import PrivacyConfig
from fedlingua.federation.client import ClientSite, handle_train
from fedlingua.federation.mods import PublicError
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    check_state,
    payload_bytes,
    record_to_state,
    state_to_record,
)
from fedlingua.federation.server import Federation, RoundOutcome, State
from fedlingua.training import Workbench

FITINS_PARAMS = "fitins.parameters"


class ClientFailure(PublicError):
    """A client handler failed inside the SecAgg+ mod (its reason, already the public
    reason of an error reply, is kept)."""


# ---- client side ---------------------------------------------------------------------------
def is_secagg_train(content: RecordDict) -> bool:
    return FITINS_PARAMS in content.array_records


def handle_secagg_train(
    bench: Workbench, site: ClientSite, content: RecordDict, context: Context | None = None
) -> RecordDict:
    """The client update for a SecAgg+ round: legacy FitIns in, legacy FitRes out.

    The global tensors arrive as an ordered list (the server's state order, which is
    the workbench's trainable-parameter order); the reply's tensors go back in that order.
    """
    fitins = compat.recorddict_to_fitins(content, keep_input=True)
    names = [n for n, p in bench.model.named_parameters() if p.requires_grad]
    arrays = parameters_to_ndarrays(fitins.parameters)
    if len(arrays) != len(names):
        raise ValueError(f"received {len(arrays)} tensors, this client trains {len(names)}")
    state = {
        n: torch.from_numpy(np.array(a, copy=True)) for n, a in zip(names, arrays, strict=True)
    }
    check_state(
        state, {n: tuple(p.shape) for n, p in bench.model.named_parameters() if p.requires_grad}
    )
    ours = RecordDict(
        {ARRAYS_KEY: state_to_record(state), CONFIG_KEY: ConfigRecord(dict(fitins.config))}
    )
    reply = handle_train(bench, site, ours, context=context)
    new = record_to_state(reply[ARRAYS_KEY])
    metrics = dict(reply[METRICS_KEY])
    fitres = FitRes(
        status=Status(code=Code.OK, message="ok"),
        parameters=ndarrays_to_parameters([new[n].numpy() for n in names]),
        num_examples=int(metrics["num-examples"]),
        metrics=metrics,
    )
    return compat.fitres_to_recorddict(fitres, keep_input=True)


def dispatch(
    bench: Workbench, site: ClientSite, content: RecordDict, context: Context | None = None
) -> RecordDict:
    """A client's train handler: SecAgg+ (legacy records) or fedlingua's own records."""
    if is_secagg_train(content):
        return handle_secagg_train(bench, site, content, context)
    return handle_train(bench, site, content, context=context)


def reraise_errors(msg: Message, ctx: Context, call_next) -> Message:
    """Client mod inside `secaggplus_mod`: turn an error reply back into an exception, so the
    SecAgg+ mod fails cleanly and the client's error reply keeps the original reason."""
    reply = call_next(msg, ctx)
    if reply.has_error():
        raise ClientFailure(reply.error.reason)
    return reply


def secagg_client_mods() -> list:
    from flwr.client.mod import secaggplus_mod

    return [secaggplus_mod, reraise_errors]


# ---- server side ---------------------------------------------------------------------------
def _count(value: float) -> int | float:
    """Config value -> Flower's convention: an integer count (> 1) or a fraction (<= 1)."""
    return int(value) if value > 1 else float(value)


@dataclass
class Exchange:
    """One message the server received during a SecAgg+ round (kept for audits)."""

    stage: int
    node: int
    content: RecordDict | None
    error: str | None


class RecordingGrid(Grid):
    """A Grid that forwards to another and measures (and optionally keeps) every message.

    Each `send_and_receive` call is one SecAgg+ stage (0 setup .. 3 unmask).
    """

    def __init__(self, inner: Grid, keep: bool = False) -> None:
        self.inner = inner
        self.keep = keep
        self.stage = 0
        self.down: dict[int, int] = {}
        self.up: dict[int, int] = {}
        self.replied: dict[int, list[int]] = {}  # stage -> nodes that replied
        self.errors: dict[int, str] = {}
        self.received: list[Exchange] = []

    @property
    def run(self):  # type: ignore[override]
        return self.inner.run

    def set_run(self, run) -> None:  # type: ignore[override]
        self.inner.set_run(run)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages):  # type: ignore[override]
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids):  # type: ignore[override]
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages, *, timeout=None):  # type: ignore[override]
        messages = list(messages)
        for msg in messages:
            node = msg.metadata.dst_node_id
            self.down[node] = self.down.get(node, 0) + payload_bytes(msg.content)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        self.replied[self.stage] = []
        for reply in replies:
            node = reply.metadata.src_node_id
            if reply.has_error():
                self.errors[node] = reply.error.reason
            else:
                self.up[node] = self.up.get(node, 0) + payload_bytes(reply.content)
                self.replied[self.stage].append(node)
            if self.keep:
                content = reply.content if reply.has_content() else None
                error = reply.error.reason if reply.has_error() else None
                self.received.append(Exchange(self.stage, node, content, error))
        self.stage += 1
        return replies


class _Results(LegacyFedAvg):
    """Legacy FedAvg that also keeps what each client reported (count, scalar metrics)."""

    last: list[tuple[int, int, dict]]

    def aggregate_fit(self, server_round, results, failures):  # type: ignore[override]
        self.last = [(p.node_id, r.num_examples, dict(r.metrics)) for p, r in results]
        return super().aggregate_fit(server_round, results, failures)


class SecAggFederation(Federation):
    """One global model trained through SecAgg+ rounds (a `Federation` with its own exchange)."""

    def __init__(
        self,
        name: str,
        grid: Grid,
        state: State,
        config: Callable[[int], ConfigRecord],
        *,
        seed: int,
        privacy: PrivacyConfig,
        fraction: float = 1.0,
        node_names: dict[int, str] | None = None,
        rounds: int = 1,
        keep_messages: bool = False,
    ) -> None:
        self.nodes = sorted(grid.get_node_ids())
        sample = max(2, int(len(self.nodes) * fraction))
        # the workflow keeps no state between rounds: `server_state` is empty
        strategy = _Results(
            fraction_fit=fraction,
            fraction_evaluate=0.0,
            min_fit_clients=sample,
            min_evaluate_clients=0,
            min_available_clients=len(self.nodes),
            on_fit_config_fn=lambda rnd: dict(self.config(rnd)) | {"server-round": rnd},
            fit_metrics_aggregation_fn=lambda results: {},  # read per client in `_round`
            accept_failures=True,
        )
        super().__init__(name, strategy, grid, state, config, seed=seed, node_names=node_names)
        self.keep_messages = keep_messages
        self.last_grid: RecordingGrid | None = None
        self.workflow = SecAggPlusWorkflow(
            num_shares=_count(privacy.secagg_num_shares),
            reconstruction_threshold=_count(privacy.secagg_threshold),
            clipping_range=privacy.secagg_clipping_range,
            max_weight=privacy.secagg_max_weight,
            timeout=privacy.secagg_timeout,
        )
        self.rounds = rounds

    def _context(self, grid: Grid, server_round: int) -> LegacyContext:
        base = Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={})
        manager = SimpleClientManager()
        run_id = getattr(getattr(grid, "run", None), "run_id", 0)
        for node in self.nodes:
            manager.register(GridClientProxy(node, grid, run_id))
        ctx = LegacyContext(base, ServerConfig(num_rounds=self.rounds), self.strategy, manager)
        names = list(self.state)
        params = ndarrays_to_parameters([self.state[n].numpy() for n in names])
        ctx.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            params, keep_input=True
        )
        ctx.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
            {WorkflowKey.CURRENT_ROUND: server_round, WorkflowKey.START_TIME: time.time()}
        )
        return ctx

    def _round(self, out: RoundOutcome) -> None:
        """The SecAgg+ workflow (it samples clients and shuffles neighbours with Python's
        `random`, seeded by `step`); the server obtains only the aggregate."""
        grid = RecordingGrid(self.grid, keep=self.keep_messages)
        self.last_grid = grid
        self.strategy.last = []
        ctx = self._context(grid, out.server_round)
        before = ctx.state.array_records[MAIN_PARAMS_RECORD]
        self.workflow(grid, ctx)
        after = ctx.state.array_records[MAIN_PARAMS_RECORD]
        included = self._account(out, grid)
        if after is not before and included:
            arrays = parameters_to_ndarrays(compat.arrayrecord_to_parameters(after, True))
            new = {
                n: torch.from_numpy(np.array(a, dtype=np.float32).reshape(self.expected[n]))
                for n, a in zip(self.state, arrays, strict=True)
            }
            self._adopt(new, out)

    def _account(self, out: RoundOutcome, grid: RecordingGrid) -> set[int]:
        """Record who took part, what each sent and reported; the nodes in the aggregate."""
        sampled = set(grid.replied.get(0, [])) | set(grid.errors) | set(grid.down)
        included = {node for node, _, _ in self.strategy.last}
        out.sampled = sorted(self._who(n) for n in sampled)
        for node in sorted(sampled - included):
            out.failed[self._who(node)] = grid.errors.get(node, "dropped out of secure aggregation")
        out.bytes_down = {self._who(n): b for n, b in grid.down.items()}
        out.bytes_up = {self._who(n): b for n, b in grid.up.items()}
        losses, weights = [], []
        for node, examples, metrics in self.strategy.last:
            out.count(self._who(node), examples, metrics)
            if "train-loss" in metrics:
                losses.append(float(metrics["train-loss"]))
                weights.append(examples)
        out.succeeded.sort()
        if losses:
            out.train_loss = float(np.average(losses, weights=weights))
        return included
