"""How a client's handler is wrapped, as a Flower ClientApp wraps it: mods and the error reply.

`compose` stacks Flower client mods (differential privacy, SecAgg+, fault injection, the
payload log) around a handler; `error_reply` is the reply a failing client sends, built
the same way by the in-process grid, the Flower ClientApp and the long-running worker,
so a failure reads "<exception type>: <message>" in metrics.jsonl whichever path ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flwr.app import Context, Error, Message, MessageType
from flwr.common.constant import ErrorCode

App = Callable[[Message, Context], Message]
Mod = Callable[[Message, Context, App], Message]


def compose(mods: Sequence[Mod], app: App) -> App:
    """`app` wrapped in `mods` as a Flower ClientApp wraps its handlers (mods[0] outermost)."""

    def wrap(mod: Mod, call_next: App) -> App:
        return lambda msg, ctx: mod(msg, ctx, call_next)

    for mod in reversed(list(mods)):
        app = wrap(mod, app)
    return app


def train_only(mod: Mod) -> Mod:
    """`mod` around train messages only, as a ClientApp's `@app.train(mods=[...])` applies
    it: roll-call and evaluate messages pass through untouched."""

    def wrapped(msg: Message, ctx: Context, call_next: App) -> Message:
        if str(msg.metadata.message_type).startswith(MessageType.TRAIN):
            return mod(msg, ctx, call_next)
        return call_next(msg, ctx)

    return wrapped


class PublicError(RuntimeError):
    """An error whose message fedlingua writes without any data in it (a dropout, a policy
    refusal): the one kind whose message a site's error reply carries."""


def error_reason(exc: BaseException) -> str:
    """What a failed client reports: the exception's type, and its message only when it is
    a `PublicError`; any other message may quote data (a row of a file, a label), so it
    stays in the site's own log."""
    if isinstance(exc, PublicError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: details in the site's log"


def error_reply(msg: Message, exc: BaseException) -> Message:
    """The reply to `msg` of a client whose handler (or one of its mods) raised `exc`."""
    return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, error_reason(exc)), reply_to=msg)
