"""The server side of a round, written once: Flower strategy + any Grid.

`Federation.step` samples clients, sends the global trainable tensors,
collects replies through the grid (in-process or Flower's: both are polled the
same way), rejects malformed tensors, aggregates with the Flower strategy and
measures every payload. A round in which no client replied keeps the previous
global state. It also records the L2 norm of every client's update (what a DP
clipping norm is chosen against) and, when the strategy clips (a DP wrapper,
which has a `clipping_norm`), the clipping norm the round used. The same object
runs inside the in-process simulation and inside the Flower ServerApp.

A round's protocol is one: seed the round, exchange, account every client in a
`RoundOutcome`, adopt the aggregate. `Federation._round` is the plain exchange of
fedlingua's records; `fedlingua.federation.secagg.SecAggFederation` replaces only
that step with Flower's SecAgg+ workflow.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedlingua.federation.grid import NODE_PREFIX
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CLIENT_KEY,
    METRICS_KEY,
    PayloadError,
    check_record_size,
    check_state,
    check_train_metrics,
    payload_bytes,
    record_to_state,
    state_to_record,
)
from fedlingua.federation.strategies import restore_strategy_state, strategy_state
from fedlingua.runtime import derive_seed, entropy_seed

State = dict[str, torch.Tensor]
log = logging.getLogger("fedlingua.federation")


@dataclass
class RoundOutcome:
    """What one federation did in one round (all sizes in bytes, times in seconds)."""

    server_round: int
    sampled: list[str] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_down: dict[str, int] = field(default_factory=dict)
    bytes_up: dict[str, int] = field(default_factory=dict)
    client_compute_s: dict[str, float] = field(default_factory=dict)
    update_norm: dict[str, float] = field(default_factory=dict)
    clipping_norm: float | None = None
    num_examples: int = 0
    train_loss: float | None = None
    updated: bool = False
    skipped: str | None = None  # why the round did not aggregate (quorum not met)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def count(self, who: str, examples: int, metrics: Mapping) -> None:
        """`who`'s update entered the aggregate: its examples and reported compute time."""
        self.succeeded.append(who)
        self.client_compute_s[who] = float(metrics.get("compute-s", 0.0))
        self.num_examples += int(examples)


def exchange(
    grid: Grid, messages: list[Message], timeout: float | None, poll_s: float = 0.5
) -> tuple[list[Message], dict[str, int]]:
    """Send `messages`; collect replies until all arrived or `timeout` passed. Returns the
    replies and message id -> destination node (what an error reply is about).

    This polls every `poll_s` seconds (Flower's own `send_and_receive` sleeps 3 s between
    polls, which every round would pay); the in-process grid delivers on the first poll.
    Replies are pulled in the order the messages were sent.
    """
    ids = list(grid.push_messages(messages))
    sent = {i: m.metadata.dst_node_id for i, m in zip(ids, messages, strict=False) if i}
    pending = set(sent)
    deadline = None if timeout is None else time.monotonic() + timeout
    replies: list[Message] = []
    while pending:
        got = list(grid.pull_messages([i for i in ids if i in pending]))
        replies += got
        pending -= {m.metadata.reply_to_message_id for m in got}
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(poll_s)
    return replies, sent


def _distance(a: State, b: State) -> float:
    """L2 norm of a - b over all tensors (a client's update)."""
    total = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in b)
    return total**0.5


class Federation:
    """One global model trained by a set of nodes through a Flower strategy."""

    def __init__(
        self,
        name: str,
        strategy: Strategy,
        grid: Grid,
        state: State,
        config: Callable[[int], ConfigRecord],
        *,
        seed: int,
        node_names: Mapping[int, str] | None = None,
        timeout: float | None = None,
        min_clients: int = 1,
        poll_s: float = 0.5,
        measure: bool = True,
        seed_noise: bool = False,
        fresh_noise: bool = False,
        declared: Mapping[str, int] | None = None,
        check_clipping: bool = False,
    ) -> None:
        self.name = name
        self.strategy = strategy
        self.grid = grid
        self.state = state
        self.config = config
        self.seed = seed
        self.node_names = node_names if node_names is not None else {}
        self.bound = node_names is not None  # only nodes that answered the roll call count
        self.timeout = timeout
        self.min_clients = max(1, int(min_clients))
        self.poll_s = poll_s
        self._sent: dict[str, int] = {}  # message id -> destination node, this round
        self.measure = measure
        self.seed_noise = seed_noise  # seed numpy's global RNG per round (DP noise)
        self.fresh_noise = fresh_noise  # reseed it from OS entropy instead
        self.declared = declared  # client id -> training examples it declared (the cap)
        self.check_clipping = check_clipping  # sites clip: refuse an update above the norm
        self.expected = {k: tuple(v.shape) for k, v in state.items()}
        self.dtypes = {k: v.dtype for k, v in state.items()}  # what travels, whatever the strategy

    def _who(self, node: int, reply: Message | None = None) -> str:
        """The client id bound to `node` at the roll call, never what a reply claims (a
        federation built without a roll call, as in unit tests, goes by the claim)."""
        if not self.bound and reply is not None and reply.has_content():
            identity = reply.content.config_records.get(CLIENT_KEY)
            if identity is not None and "client-id" in identity:
                return str(identity["client-id"])
        return self.node_names.get(node, f"node-{node}")

    def step(self, server_round: int) -> RoundOutcome:
        start = time.perf_counter()
        out = RoundOutcome(server_round)
        # Client sampling uses Python's `random`; seeding it per round makes a resumed
        # run sample exactly the clients an uninterrupted run would.
        random.seed(derive_seed("sample", self.seed, self.name, server_round))
        if self.seed_noise:  # Flower's DP wrappers draw their noise from np.random
            np.random.seed(derive_seed("server-noise", self.seed, self.name, server_round))
        elif self.fresh_noise:
            np.random.seed(entropy_seed())
        self._round(out)
        out.seconds = time.perf_counter() - start
        return out

    def _round(self, out: RoundOutcome) -> None:
        """Configure, exchange, check the replies, aggregate (all recorded in `out`)."""
        connected = len(list(self.grid.get_node_ids()))
        if connected < self.min_clients:
            self._skip(out, f"{connected} client(s) connected")
            return
        messages = list(
            self.strategy.configure_train(
                out.server_round,
                state_to_record(self.state),
                self.config(out.server_round),
                self.grid,
            )
        )
        self._measure_down(out, messages)
        valid = self._check_replies(out, messages, self._exchange(messages))
        out.sampled = sorted(set(out.bytes_down))
        clipping_norm = getattr(self.strategy, "clipping_norm", None)
        out.clipping_norm = None if clipping_norm is None else float(clipping_norm)
        if len(valid) < self.min_clients:
            self._skip(out, f"{len(valid)} valid repl{'y' if len(valid) == 1 else 'ies'}")
            return
        # in client order, not arrival order: float sums depend on the order of their terms,
        # and the aggregate must not depend on which node's reply came back first
        valid.sort(key=lambda r: self._who(self._source(r), r))
        agg_arrays, agg_metrics = self.strategy.aggregate_train(out.server_round, valid)
        if agg_arrays is not None:
            self._adopt(record_to_state(agg_arrays), out)
        if agg_metrics is not None and "train-loss" in agg_metrics:
            out.train_loss = float(agg_metrics["train-loss"])

    def _skip(self, out: RoundOutcome, why: str) -> None:
        """The round does not aggregate: fewer than `min_clients` took part."""
        out.skipped = f"quorum not met: {why}, federation.min_clients={self.min_clients}"
        log.warning("%s round %d skipped: %s", self.name, out.server_round, out.skipped)

    def _measure_down(self, out: RoundOutcome, messages: list[Message]) -> None:
        """Bytes sent to each sampled node (one content object addressed to many: measured once)."""
        sizes: dict[int, int] = {}
        for msg in messages:
            content_id = id(msg.content)
            if self.measure:
                sizes.setdefault(content_id, payload_bytes(msg.content))
            out.bytes_down[self._who(msg.metadata.dst_node_id)] = sizes.get(content_id, 0)

    def _check_replies(
        self, out: RoundOutcome, messages: list[Message], replies: list[Message]
    ) -> list[Message]:
        """The replies that may be aggregated; every other sampled node's failure in `out`."""
        answered = {self._source(r) for r in replies}
        for msg in messages:
            node = msg.metadata.dst_node_id
            if node not in answered:
                out.failed[self._who(node)] = "no reply before the timeout"
        valid = []
        for reply in replies:
            node = self._source(reply)
            who = self._who(node, reply)
            if reply.has_error():
                out.failed[who] = reply.error.reason
                continue
            out.bytes_up[who] = payload_bytes(reply.content) if self.measure else 0
            try:
                received, metrics = self._checked(node, who, reply)
            except (KeyError, TypeError, ValueError, PayloadError) as exc:
                out.failed[who] = f"rejected reply: {exc}"
                log.warning(
                    "%s round %d: rejected reply from %s: %s", self.name, out.server_round, who, exc
                )
                continue
            valid.append(reply)
            out.count(who, metrics["num-examples"], metrics)
            out.update_norm[who] = _distance(received, self.state)
        return valid

    def _checked(self, node: int, who: str, reply: Message) -> tuple[State, Mapping]:
        """A reply's tensors and metrics, once every check passed (else an exception)."""
        if self.bound and node not in self.node_names:
            raise PayloadError(f"node {node} did not answer the roll call")
        identity = reply.content.config_records.get(CLIENT_KEY)
        claimed = identity.get("client-id") if identity is not None else None
        if self.bound and claimed is not None and claimed != who:  # the node says who it is
            raise PayloadError(f"the reply claims client {claimed!r}; node {node} is {who!r}")
        for record in reply.content.array_records.values():  # sizes before decoding
            check_record_size(record, self.expected)
        received = record_to_state(reply.content[ARRAYS_KEY])
        check_state(received, self.expected)
        for name, record in reply.content.array_records.items():
            if name != ARRAYS_KEY:  # e.g. SCAFFOLD's control change: tensor per tensor
                check_state(record_to_state(record), self.expected)
        cap = None if self.declared is None else self.declared.get(who)
        metrics = check_train_metrics(reply.content[METRICS_KEY], cap)
        if self.check_clipping:
            norm, bound = _distance(received, self.state), float(self.strategy.clipping_norm)
            if norm > bound * (1 + 1e-4) + 1e-6:
                raise PayloadError(f"update norm {norm:.6g} above the clipping norm {bound:.6g}")
        return received, metrics

    def _source(self, reply: Message) -> int:
        """The node a reply is about: an error the SuperLink makes for an unavailable node
        comes from the SuperLink, so go by the message it answers."""
        return self._sent.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

    def _exchange(self, messages: list[Message]) -> list[Message]:
        replies, self._sent = exchange(self.grid, messages, self.timeout, self.poll_s)
        return replies

    def _adopt(self, state: State, out: RoundOutcome | None = None) -> None:
        """Make `state` (checked against the expected tensors) the global state."""
        check_state(state, self.expected)
        # in the trainable tensors' dtype: Flower's server optimizers (FedAdam, FedYogi,
        # FedAvgM) hand back float64, which would double every later download
        self.state = {k: state[k].to(self.dtypes[k]) for k in self.state}
        if out is not None:
            out.updated = True

    # ---- checkpointing ----------------------------------------------------------------------
    def server_state(self) -> dict[str, np.ndarray]:
        """The strategy's state, and (in-process) what the nodes keep between rounds."""
        nodes = getattr(self.grid, "node_states", None)
        return strategy_state(self.strategy) | (nodes() if nodes is not None else {})

    def restore(self, state: State, server_state: dict[str, np.ndarray]) -> None:
        self._adopt(state)
        ours = {k: v for k, v in server_state.items() if not k.startswith(NODE_PREFIX)}
        restore_strategy_state(self.strategy, ours)
        restore_nodes = getattr(self.grid, "restore_node_states", None)
        if restore_nodes is not None:
            restore_nodes({k: v for k, v in server_state.items() if k.startswith(NODE_PREFIX)})
