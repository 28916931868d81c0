"""The Flower ClientApp: one SuperNode plays one fedlingua client.

`train` is `fedlingua.federation.client.handle_train`, the same client update the
in-process simulation runs; `query` answers the server's roll call with the
node's client id and language. The node's `partition-id` selects the client
(see `fedlingua.flower_app.task`). Each ClientApp process computes with one
torch thread: several clients share the machine's cores.

A handler that raises replies with an error message whose reason is
"<exception type>: <message>", as the in-process grid does, so a simulated
client dropout or a config mismatch reads the same in metrics.jsonl under both.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode

from fedlingua.federation.client import ClientDropout, ClientSite, handle_train
from fedlingua.flower_app.task import ClientTask, client_task, identity, load_run_config
from fedlingua.runtime import configure_threads

app = ClientApp()


def _site(context: Context) -> tuple[ClientTask, ClientSite]:
    configure_threads(1)
    task = client_task(load_run_config(context.run_config))
    node = context.node_config
    return task, task.site(int(node["partition-id"]), int(node["num-partitions"]))


def _reply(msg: Message, work: Callable[[], RecordDict]) -> Message:
    try:
        return Message(work(), reply_to=msg)
    except Exception as exc:  # the error reply the in-process grid makes for a failing client
        if not isinstance(exc, ClientDropout):
            traceback.print_exc()  # the node's log keeps the traceback
        reason = f"{type(exc).__name__}: {exc}"
        return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    return _reply(msg, lambda: identity(_site(context)[1]))


@app.train()
def train(msg: Message, context: Context) -> Message:
    def work() -> RecordDict:
        task, site = _site(context)
        return handle_train(task.bench, site, msg.content)

    return _reply(msg, work)
