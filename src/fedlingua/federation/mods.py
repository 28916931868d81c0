"""How a client's handler is wrapped, as a Flower ClientApp wraps it: mods and the error reply.

`compose` stacks Flower client mods (differential privacy, SecAgg+, fault injection, the
payload log) around a handler; `error_reply` is the reply a failing client sends, built
the same way by the in-process grid, the Flower ClientApp and the long-running worker,
so a failure reads "<exception type>: <message>" in metrics.jsonl whichever path ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flwr.app import Context, Error, Message
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


def error_reason(exc: BaseException) -> str:
    """What a failed client reports: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"


def error_reply(msg: Message, exc: BaseException) -> Message:
    """The reply to `msg` of a client whose handler (or one of its mods) raised `exc`."""
    return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, error_reason(exc)), reply_to=msg)
