"""The server side of a round, written once: Flower strategy + any Grid.

`Federation.step` samples clients, sends the global trainable tensors,
collects replies through the grid (in-process or Flower's), rejects malformed
tensors, aggregates with the Flower strategy and measures every payload. A
round in which no client replied keeps the previous global state. It also
records the L2 norm of every client's update (what a DP clipping norm is chosen
against) and, under a DP wrapper, the clipping norm the round used. The same
object runs inside the in-process simulation and inside the Flower ServerApp.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CLIENT_KEY,
    METRICS_KEY,
    PayloadError,
    check_state,
    payload_bytes,
    record_to_state,
    state_to_record,
)
from fedlingua.federation.strategies import restore_strategy_state, strategy_state
from fedlingua.privacy.dp import current_clipping_norm
from fedlingua.runtime import derive_seed

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
        node_names: dict[int, str] | None = None,
        timeout: float | None = None,
        min_clients: int = 1,
        poll_s: float = 0.5,
        measure: bool = True,
        seed_noise: bool = False,
    ) -> None:
        self.name = name
        self.strategy = strategy
        self.grid = grid
        self.state = state
        self.config = config
        self.seed = seed
        self.node_names = node_names or {}
        self.timeout = timeout
        self.min_clients = max(1, int(min_clients))
        self.poll_s = poll_s
        self._sent: dict[str, int] = {}  # message id -> destination node, this round
        self.measure = measure
        self.seed_noise = seed_noise  # seed numpy's global RNG per round (DP noise)
        self.expected = {k: tuple(v.shape) for k, v in state.items()}

    def _who(self, node: int, reply: Message | None = None) -> str:
        if reply is not None and reply.has_content() and CLIENT_KEY in reply.content:
            return str(reply.content[CLIENT_KEY]["client-id"])
        return self.node_names.get(node, f"node-{node}")

    def step(self, server_round: int) -> RoundOutcome:
        start = time.perf_counter()
        out = RoundOutcome(server_round)
        # Client sampling uses Python's `random`; seeding it per round makes a resumed
        # run sample exactly the clients an uninterrupted run would.
        random.seed(derive_seed("sample", self.seed, self.name, server_round))
        if self.seed_noise:  # Flower's DP wrappers draw their noise from np.random
            np.random.seed(derive_seed("server-noise", self.seed, self.name, server_round))
        connected = len(list(self.grid.get_node_ids()))
        if connected < self.min_clients:
            out.skipped = (
                f"quorum not met: {connected} client(s) connected, "
                f"federation.min_clients={self.min_clients}"
            )
            log.warning("%s round %d skipped: %s", self.name, server_round, out.skipped)
            out.seconds = time.perf_counter() - start
            return out
        arrays = state_to_record(self.state)
        messages = list(
            self.strategy.configure_train(
                server_round, arrays, self.config(server_round), self.grid
            )
        )
        sizes: dict[int, int] = {}
        for msg in messages:
            node = msg.metadata.dst_node_id
            content_id = id(msg.content)
            if self.measure:
                sizes.setdefault(content_id, payload_bytes(msg.content))
            out.bytes_down[self._who(node)] = sizes.get(content_id, 0)
        replies = self._exchange(messages)
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
                received = record_to_state(reply.content[ARRAYS_KEY])
                check_state(received, self.expected)
                examples = reply.content[METRICS_KEY]["num-examples"]
                if not examples or examples <= 0:
                    raise PayloadError("num-examples must be a positive count")
            except (KeyError, TypeError, ValueError, PayloadError) as exc:
                out.failed[who] = f"rejected reply: {exc}"
                log.warning(
                    "%s round %d: rejected reply from %s: %s", self.name, server_round, who, exc
                )
                continue
            valid.append(reply)
            out.succeeded.append(who)
            metrics = reply.content[METRICS_KEY]
            out.client_compute_s[who] = float(metrics.get("compute-s", 0.0))
            out.num_examples += int(metrics["num-examples"])
            out.update_norm[who] = _distance(received, self.state)
        out.sampled = sorted(set(out.bytes_down))
        out.clipping_norm = current_clipping_norm(self.strategy)
        if len(valid) < self.min_clients:
            out.skipped = (
                f"quorum not met: {len(valid)} valid repl{'y' if len(valid) == 1 else 'ies'}, "
                f"federation.min_clients={self.min_clients}"
            )
            log.warning("%s round %d skipped: %s", self.name, server_round, out.skipped)
        else:
            agg_arrays, agg_metrics = self.strategy.aggregate_train(server_round, valid)
            if agg_arrays is not None:
                new = record_to_state(agg_arrays, self.expected)
                self.state = {k: new[k] for k in self.state}
                out.updated = True
            if agg_metrics is not None and "train-loss" in agg_metrics:
                out.train_loss = float(agg_metrics["train-loss"])
        out.seconds = time.perf_counter() - start
        return out

    def _source(self, reply: Message) -> int:
        """The node a reply is about: an error the SuperLink makes for an unavailable node
        comes from the SuperLink, so go by the message it answers."""
        return self._sent.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

    def _exchange(self, messages: list[Message]) -> list[Message]:
        """Send the round's messages; collect replies until all arrived or `timeout` passed.

        On a Flower grid this polls every `poll_s` seconds (Flower's own `send_and_receive`
        sleeps 3 s between polls, which every round would pay). The in-process grid
        answers at once.
        """
        from fedlingua.federation.grid import InProcessGrid

        self._sent = {}
        if isinstance(self.grid, InProcessGrid):
            return list(self.grid.send_and_receive(messages, timeout=self.timeout))
        ids = list(self.grid.push_messages(messages))
        self._sent = {i: m.metadata.dst_node_id for i, m in zip(ids, messages, strict=False) if i}
        pending = set(self._sent)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        replies: list[Message] = []
        while pending:
            got = list(self.grid.pull_messages(sorted(pending)))
            replies += got
            pending -= {m.metadata.reply_to_message_id for m in got}
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(self.poll_s)
        return replies

    # ---- checkpointing ----------------------------------------------------------------------
    def server_state(self) -> dict[str, np.ndarray]:
        return strategy_state(self.strategy)

    def restore(self, state: State, server_state: dict[str, np.ndarray]) -> None:
        check_state(state, self.expected)
        self.state = {k: state[k] for k in self.state}
        restore_strategy_state(self.strategy, server_state)
