"""The Flower ClientApp: one SuperNode plays one fedlingua client.

`train` is `fedlingua.federation.client.handle_train`, the same client update the
in-process simulation runs; `query` answers the server's roll call with the
node's client id and language. The node's `partition-id` selects the client
(see `fedlingua.flower_app.task`). Each ClientApp process computes with one
torch thread: several clients share the machine's cores.

A handler that raises replies with the error reply the in-process grid makes
(`fedlingua.federation.mods.error_reply`), so a simulated client dropout or a
config mismatch reads the same in metrics.jsonl under both.

The handlers run inside the same client mods the in-process grid applies: the
payload log (`FEDLINGUA_PAYLOAD_LOG`, outermost: it records what leaves) and the
differential-privacy mods `privacy.dp` asks for (`fedlingua.privacy.dp.client_mods`).

A SuperNode computes on the device its node config names (`--node-config "device='cuda:0'"`),
which replaces the run config's `model.device` for that node only.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedlingua.config import RunConfig
from fedlingua.federation.client import ClientDropout, ClientSite
from fedlingua.federation.faults import fault_injection
from fedlingua.federation.mods import compose, error_reply
from fedlingua.federation.secagg import dispatch
from fedlingua.flower_app.task import ClientTask, client_task, identity, load_run_config
from fedlingua.privacy.dp import client_mods
from fedlingua.privacy.payload import payload_log_mods
from fedlingua.runtime import configure_threads

app = ClientApp()


def _site(context: Context) -> tuple[ClientTask, ClientSite]:
    configure_threads(1)
    node = context.node_config
    task = client_task(node_run_config(context))
    return task, task.site(int(node["partition-id"]), int(node["num-partitions"]))


def node_run_config(context: Context) -> RunConfig:
    """The run config, on the device the node config names (`device`), if it names one."""
    cfg = load_run_config(context.run_config)
    device = str(context.node_config.get("device", "") or "")
    if device:
        cfg.model.device = device
        cfg.validate()
    return cfg


def _reply(msg: Message, work: Callable[[], RecordDict]) -> Message:
    try:
        return Message(work(), reply_to=msg)
    except Exception as exc:  # the error reply the in-process grid makes for a failing client
        if not isinstance(exc, ClientDropout):
            traceback.print_exc()  # the node's log keeps the traceback
        return error_reply(msg, exc)


@app.query()
def query(msg: Message, context: Context) -> Message:
    return _logged(lambda m, c: _reply(m, lambda: identity(_site(c)[1])))(msg, context)


@app.train(mods=[fault_injection])  # off unless the node's operator sets fedlingua-fault
def train(msg: Message, context: Context) -> Message:
    def handler(m: Message, c: Context) -> Message:
        def work() -> RecordDict:
            task, site = _site(c)
            return dispatch(task.bench, site, m.content, c)  # SecAgg+ or fedlingua records

        return _reply(m, work)

    def with_mods(m: Message, c: Context) -> Message:
        mods = client_mods(load_run_config(c.run_config))
        return _reply_from(m, lambda: compose(mods, handler)(m, c))

    return _logged(with_mods)(msg, context)


def _reply_from(msg: Message, call: Callable[[], Message]) -> Message:
    """`call()`'s reply, or the error reply a failing mod earns (as in the in-process grid)."""
    try:
        return call()
    except Exception as exc:
        traceback.print_exc()
        return error_reply(msg, exc)


def _logged(app_fn: Callable[[Message, Context], Message]) -> Callable[[Message, Context], Message]:
    return compose(payload_log_mods(), app_fn)
