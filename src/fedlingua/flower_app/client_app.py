"""The Flower ClientApp: one SuperNode is one fedlingua site.

The node reads only its own data, named in its node config (`data-dir`; see
`fedlingua.flower_app.task`). `query` answers the server's roll call with the site's
identity (`fedlingua.federation.site.identity`), `train` is
`fedlingua.federation.client.handle_train` and `evaluate` is
`fedlingua.federation.site.handle_evaluate`: the same functions the in-process
simulation's nodes run. Each ClientApp process computes with one torch thread: several
sites share the machine's cores.

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

from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.clientapp import ClientApp

from fedlingua.config import RunConfig
from fedlingua.federation.client import ClientDropout, ClientSite
from fedlingua.federation.faults import fault_injection
from fedlingua.federation.mods import compose, error_reply
from fedlingua.federation.payload import ARRAYS_KEY, CONFIG_KEY
from fedlingua.federation.secagg import dispatch
from fedlingua.federation.site import handle_evaluate, identity, message_labels
from fedlingua.flower_app.task import SiteTask, load_run_config, site_task
from fedlingua.privacy.dp import client_mods
from fedlingua.privacy.payload import payload_log_mods
from fedlingua.privacy.policy import PolicyViolation
from fedlingua.runtime import configure_threads
from fedlingua.training import Workbench

app = ClientApp()


def _task(context: Context) -> SiteTask:
    configure_threads(1)
    return site_task(node_run_config(context), context.node_config)


def _prepared(msg: Message, context: Context) -> tuple[Workbench, ClientSite]:
    """This node's workbench and site, for the label list the message carries."""
    return _task(context).prepared(message_labels(msg.content))


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
        if not isinstance(exc, ClientDropout | PolicyViolation):
            traceback.print_exc()  # the node's log keeps the traceback
        elif isinstance(exc, PolicyViolation):
            print(f"refused by this site's policy: {exc}", flush=True)
        return error_reply(msg, exc)


@app.query()
def query(msg: Message, context: Context) -> Message:
    return _logged(lambda m, c: _reply(m, lambda: identity(_task(c).site)))(msg, context)


def _policy(msg: Message, context: Context, site: ClientSite) -> None:
    """Refuse a message that asks this site for less than its policy accepts."""
    policy = _task(context).policy
    if policy is None:
        return
    policy.check_run(node_run_config(context))
    content = msg.content
    if str(msg.metadata.message_type).startswith(MessageType.EVALUATE):
        config = content[CONFIG_KEY]
        for lang in config["languages"]:
            for split in config["splits"]:
                policy.check_evaluation(len(site.evaluation.get(lang, {}).get(split, ())))
        steps = int(config.get("personalize-steps", 0))
        if steps:
            policy.check_train(ConfigRecord(dict(config) | {"local-steps": steps}), len(site.train))
        return
    if policy.require_secure_aggregation and ARRAYS_KEY in content.array_records:
        raise PolicyViolation("this site trains only through secure aggregation")
    for record in content.config_records.values():
        if "batch-size" in record:
            policy.check_train(record, len(site.train))


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    def work(m: Message, c: Context) -> RecordDict:
        bench, site = _prepared(m, c)
        _policy(m, c, site)
        return handle_evaluate(bench, site, m.content, c)

    return _logged(lambda m, c: _reply(m, lambda: work(m, c)))(msg, context)


@app.train(mods=[fault_injection])  # off unless the node's operator sets fedlingua-fault
def train(msg: Message, context: Context) -> Message:
    def handler(m: Message, c: Context) -> Message:
        def work() -> RecordDict:
            bench, site = _prepared(m, c)
            _policy(m, c, site)
            return dispatch(bench, site, m.content, c)  # SecAgg+ or fedlingua records

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
