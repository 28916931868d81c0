"""An in-process Flower `Grid`: the default simulation, with no Ray, sockets or extra processes.

It implements the same `Grid` interface Flower's ServerApp drives, so the
server loop and the Flower strategies run unchanged: `push_messages` queues the
messages (each gets a message id, as on Flower's grids) and `pull_messages` delivers
them, calling each addressed client's handler in this process, so the server polls
this grid exactly as it polls Flower's. All simulated
clients share the one workbench (frozen backbone) of the process. A handler
that raises becomes an error reply, exactly as a failing ClientApp does under
Flower, and the strategy aggregates what arrived.

`mods` are Flower client mods (differential privacy, SecAgg+, payload logging)
applied around every handler exactly as a ClientApp applies them, each node with
its own persistent `Context` (its `node_config` carries the node's partition id,
as under Flower). With mods, each node receives its own copy of the message
content (serialized and parsed, as over the wire): Flower's mods modify what they
receive, and a server may address one content object to many nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from fedlingua.federation.mods import Mod, compose, error_reply
from fedlingua.federation.payload import deserialize, serialize

Handler = Callable[..., RecordDict]  # (content, *, context) -> reply content
NODE_PREFIX = "node/"  # flat keys of node state: node/<node id>/<record>/<array key>
KEPT = "fedlingua."  # the Context.state records a node keeps for fedlingua


class InProcessGrid(Grid):
    """Nodes 1..N, each a local handler; messages are delivered by direct calls."""

    def __init__(
        self,
        handlers: dict[int, Handler],
        mods: Sequence[Mod] = (),
        *,
        with_context: bool = False,
        typed: bool = False,
    ) -> None:
        """`handlers`: node -> `handler(content)`, or with `with_context`
        `handler(content, context=...)` (the node's persistent Flower `Context`), or with
        `typed` `handler(message_type, content, context)`: a node that answers every
        message type (`fedlingua.federation.site.SiteHandler`), as a ClientApp does."""
        self._handlers = dict(handlers)
        self._copy = bool(mods)
        self._contexts = {
            node: Context(
                run_id=0,
                node_id=node,
                node_config={"partition-id": i, "num-partitions": len(self._handlers)},
                state=RecordDict(),
                run_config={},
            )
            for i, node in enumerate(self._handlers)
        }
        self._apps = {
            node: compose(mods, partial(_call, handler, with_context=with_context, typed=typed))
            for node, handler in self._handlers.items()
        }
        self._run = Run.create_empty(run_id=0)
        # This process plays the SuperLink's part: Flower messages need a run identity.
        for attr in ("run_id", "node_id", "task_id"):
            try:
                getattr(TaskIdentity, attr)
            except RuntimeError:
                setattr(TaskIdentity, attr, 0)
        self._pending: dict[str, Message] = {}
        self._sent = 0  # messages pushed so far: the next message id

    def node_states(self) -> dict[str, np.ndarray]:
        """What the nodes keep between rounds (their fedlingua Context.state records), flat,
        so that a checkpoint holds it and a resumed simulation continues bit-exactly."""
        return {
            f"{NODE_PREFIX}{node}/{name}/{key}": array.numpy()
            for node, ctx in self._contexts.items()
            for name, record in ctx.state.array_records.items()
            if name.startswith(KEPT)
            for key, array in record.items()
        }

    def restore_node_states(self, flat: dict[str, np.ndarray]) -> None:
        records: dict[tuple[int, str], dict[str, Array]] = {}
        for key, value in flat.items():
            node, name, array_key = key[len(NODE_PREFIX) :].split("/", 2)
            records.setdefault((int(node), name), {})[array_key] = Array(np.asarray(value))
        for (node, name), arrays in records.items():
            if node in self._contexts:
                self._contexts[node].state[name] = ArrayRecord(arrays)

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._handlers)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Queue `messages`; each gets a message id (as Flower's grids give one), which its
        reply's `reply_to_message_id` names."""
        ids = []
        for msg in messages:
            self._sent += 1
            key = str(self._sent)
            msg.metadata.__dict__["_message_id"] = key  # how Flower's own grids set it
            self._pending[key] = msg
            ids.append(key)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Deliver the queued messages `message_ids` names, in that order; their replies."""
        return [
            self._deliver(self._pending.pop(mid)) for mid in message_ids if mid in self._pending
        ]

    def send_and_receive(self, messages: Iterable[Message], *, timeout=None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))

    def _deliver(self, msg: Message) -> Message:
        node = msg.metadata.dst_node_id
        if self._copy:
            msg = _wire_copy(msg)
        try:
            return self._apps[node](msg, self._contexts[node])
        except Exception as exc:  # a failing mod: an error reply too
            return error_reply(msg, exc)


def _call(
    handler: Handler, msg: Message, context: Context, *, with_context: bool, typed: bool = False
) -> Message:
    """The handler's reply; a failing client becomes an error reply, as under Flower (where
    the ClientApp builds it inside its handler, so client mods see error replies too). The
    handler gets the node's persistent `context`, as a ClientApp's handler does."""
    try:
        if typed:
            reply = handler(msg.metadata.message_type, msg.content, context)
        elif with_context:
            reply = handler(msg.content, context=context)
        else:
            reply = handler(msg.content)
        return Message(reply, reply_to=msg)
    except Exception as exc:
        return error_reply(msg, exc)


def _wire_copy(msg: Message) -> Message:
    """`msg` with its own copy of the content, as a node receives it over the wire."""
    return Message(content=deserialize(serialize(msg.content)), metadata=msg.metadata)


class NodeSubset(Grid):
    """A view of `grid` that lists only the nodes `nodes()` names (asked at each use: a
    site that rejoined under a new node id): the nodes one federation trains on (a
    monolingual model's one site; the training sites of a federation whose grid also holds
    evaluation-only sites). Messages travel through `grid` unchanged."""

    def __init__(self, grid: Grid, nodes: Callable[[], Iterable[int]]) -> None:
        self.inner = grid
        self._nodes = nodes

    @property
    def nodes(self) -> list[int]:
        return sorted(self._nodes())

    @property
    def run(self) -> Run:  # type: ignore[override]
        return self.inner.run

    def set_run(self, run: Run) -> None:  # type: ignore[override]
        self.inner.set_run(run)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        connected = set(self.inner.get_node_ids())
        return [n for n in self.nodes if n in connected]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout=None) -> Iterable[Message]:
        return self.inner.send_and_receive(messages, timeout=timeout)

    def node_states(self) -> dict[str, np.ndarray]:
        """What this federation's nodes keep between rounds (see `InProcessGrid.node_states`)."""
        states = getattr(self.inner, "node_states", None)
        if states is None:
            return {}
        mine = {f"{NODE_PREFIX}{n}/" for n in self.nodes}
        return {k: v for k, v in states().items() if any(k.startswith(p) for p in mine)}

    def restore_node_states(self, flat: dict[str, np.ndarray]) -> None:
        restore = getattr(self.inner, "restore_node_states", None)
        if restore is not None:
            restore(flat)
