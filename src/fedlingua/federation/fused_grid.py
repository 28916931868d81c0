"""An in-process grid that answers a round's train messages K clients at a time.

With `federation.fuse_clients = K > 1` the in-process simulation trains the sampled
clients of a round together (`fedlingua.fused.fused_local_update`: one pass of the
frozen backbone over all their rows, each client's own prompt tensors, head and
optimizer), then delivers every message as `InProcessGrid` does, through the client
mods, each node's handler answering with the reply computed for it (or raising what
its client raised: a dropout, a malformed state). The server side is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial

from flwr.app import Context, Message, RecordDict

from fedlingua.federation.client import (
    hyperparameters,
    round_seed,
    train_reply,
)
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import ARRAYS_KEY, CONFIG_KEY, record_to_state
from fedlingua.federation.site import SiteHandler
from fedlingua.training import Workbench


class FusedGrid(InProcessGrid):
    """Site nodes on one workbench; pulled train messages are trained `k` at a time."""

    def __init__(
        self,
        bench: Workbench,
        sites: dict[int, SiteHandler],
        k: int,
        on_step: Callable[[], None] | None,
        mods: Sequence = (),
    ) -> None:
        handlers = {node: partial(self._answer, node) for node in sites}
        super().__init__(handlers, mods=mods, typed=True)
        self._bench, self._k, self._on_step = bench, k, on_step
        self._handlers_of = dict(sites)
        self._ready: dict[int, RecordDict | Exception] = {}

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        ids = list(message_ids)
        train = [
            self._pending[i]
            for i in ids
            if i in self._pending and self._pending[i].metadata.message_type.startswith("train")
        ]
        for start in range(0, len(train), self._k):
            self._ready.update(self._train_together(train[start : start + self._k]))
        return super().pull_messages(ids)

    def _answer(
        self, node: int, message_type: str, content: RecordDict, context: Context
    ) -> RecordDict:
        if node not in self._ready:  # not a fused train message: what the node itself answers
            return self._handlers_of[node](message_type, content, context)
        outcome = self._ready.pop(node)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _train_together(self, chunk: list[Message]) -> dict[int, RecordDict | Exception]:
        from fedlingua.fused import fused_local_update

        outcomes: dict[int, RecordDict | Exception] = {}
        jobs = []  # (node, state, seed)
        model = self._bench.model
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
        for msg in chunk:
            node = msg.metadata.dst_node_id
            try:
                seed = round_seed(msg.content[CONFIG_KEY], self._handlers_of[node].site.client_id)
                jobs.append((node, record_to_state(msg.content[ARRAYS_KEY], shapes), seed))
            except Exception as exc:  # what the plain handler would have raised
                outcomes[node] = exc
        if not jobs:
            return outcomes
        config = next(m.content[CONFIG_KEY] for m in chunk if m.metadata.dst_node_id == jobs[0][0])
        try:
            results = fused_local_update(
                self._bench,
                [state for _, state, _ in jobs],
                [self._handlers_of[node].site.train for node, _, _ in jobs],
                [seed for _, _, seed in jobs],
                on_step=self._on_step,
                **hyperparameters(config),
            )
        except Exception as exc:  # every client of the chunk fails, as its ClientApp would
            return outcomes | {node: exc for node, _, _ in jobs}
        for (node, _, _), result in zip(jobs, results, strict=True):
            outcomes[node] = train_reply(self._handlers_of[node].site, result)
        return outcomes
