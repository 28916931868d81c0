"""Fault injection for tests and robustness experiments: a client that sends bad tensors.

A federation must survive a site that sends garbage, whether by bug or on purpose.
To test that, a SuperNode operator can make *their own* node corrupt its train
replies with the node-config key `fedlingua-fault`:

    flower-supernode ... --node-config "partition-id=2 num-partitions=3 fedlingua-fault='scale:100'"
    scripts/federation.sh up --nodes 3 --fault 2=scale:100

It is off unless that key is set, it only changes the replies of the node whose
operator set it (a node can send anything anyway: this is the threat the server
defends against), and every corrupted reply is logged as a warning on that node.
The kinds:

    scale:K       every tensor multiplied by K (well-formed: only robust aggregation helps)
    random[:S]    every tensor replaced by Gaussian noise of standard deviation S (1.0)
    wrong-shape   the first tensor loses its last row or element (rejected by the server)
    nan           the first tensor filled with NaN (rejected)
    drop-tensor   the first tensor left out (rejected)
    pickled       the first tensor sent as a pickled numpy object array (rejected
                  without being unpickled: the server decodes with allow_pickle=False)
    huge:MB       an extra tensor of MB mebibytes appended (rejected by its size, before
                  any tensor of the reply is decoded: `payload.check_record_size`)
    stall:S       the reply held back S seconds (a node slower than federation.round_timeout:
                  the server counts it as "no reply before the timeout"); the tensors are
                  left as they are

The same `corrupt` function serves in-process experiments through `corrupting`
(`benchmarks/robust_aggregation.py`, tests/federation/test_robust_aggregation.py).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message
from flwr.clientapp.typing import ClientAppCallable

from fedlingua.federation.payload import ARRAYS_KEY, CONFIG_KEY
from fedlingua.runtime import derive_seed

FAULT_KEY = "fedlingua-fault"
KINDS = ("scale", "random", "wrong-shape", "nan", "drop-tensor", "pickled", "huge", "stall")
NEEDS_ARG = ("scale", "huge", "stall")  # kinds whose number is not optional
HUGE_TENSOR = "fedlingua-fault-huge"

log = logging.getLogger("fedlingua.faults")


def parse_fault(spec: str) -> tuple[str, float | None]:
    """`"scale:100"` -> ("scale", 100.0); raises ValueError for an unknown kind."""
    kind, _, arg = spec.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"{FAULT_KEY}={spec!r}: use one of {KINDS} (e.g. 'scale:100')")
    if kind in NEEDS_ARG and not arg:
        raise ValueError(f"{FAULT_KEY}={spec!r}: give the number, e.g. '{kind}:100'")
    try:
        value = float(arg) if arg else None
    except ValueError as exc:
        raise ValueError(f"{FAULT_KEY}={spec!r}: {arg!r} is not a number") from exc
    if kind in ("huge", "stall") and not (value is not None and 0 < value < float("inf")):
        raise ValueError(f"{FAULT_KEY}={spec!r}: {arg!r} must be a positive number")
    return kind, value


def _pickled_array(values: np.ndarray) -> Array:
    """An Array whose bytes are a pickled object array (what a hostile peer could send)."""
    obj = np.empty(1, dtype=object)
    obj[0] = values.tolist()
    buffer = io.BytesIO()
    np.save(buffer, obj, allow_pickle=True)
    return Array(dtype="object", shape=(1,), stype="numpy.ndarray", data=buffer.getvalue())


def corrupt(record: ArrayRecord, spec: str, seed: int = 0) -> ArrayRecord:
    """A corrupted copy of `record` (see the module docstring for the kinds)."""
    kind, value = parse_fault(spec)
    arrays = {name: arr.numpy() for name, arr in record.items()}
    first = next(iter(arrays))
    rng = np.random.default_rng(derive_seed("fault", seed, spec))
    out: dict[str, Array] = {}
    for name, a in arrays.items():
        if kind in ("huge", "stall"):  # stall: the tensors are fine, the reply is late
            out[name] = Array(a)
        elif kind == "scale":
            out[name] = Array(np.asarray(a * value, dtype=a.dtype))
        elif kind == "random":
            std = 1.0 if value is None else value
            out[name] = Array(rng.normal(0.0, std, size=a.shape).astype(a.dtype))
        elif name != first:
            out[name] = Array(a)
        elif kind == "wrong-shape":
            out[name] = Array(np.ascontiguousarray(a[:-1] if a.ndim else a.reshape(1)))
        elif kind == "nan":
            out[name] = Array(np.full_like(a, np.nan))
        elif kind == "pickled":
            out[name] = _pickled_array(a)
        # drop-tensor: leave it out
    if kind == "huge":
        out[HUGE_TENSOR] = Array(np.zeros(int(value * 2**20) // 4, dtype=np.float32))
    return ArrayRecord(out)


def fault_injection(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower ClientApp mod: corrupt this node's train reply when `fedlingua-fault` is set."""
    reply = call_next(msg, context)
    spec = str(context.node_config.get(FAULT_KEY, "") or "")
    if not spec or reply.has_error() or ARRAYS_KEY not in reply.content.array_records:
        return reply
    config = msg.content.config_records.get(CONFIG_KEY)
    server_round = int(config.get("server-round", 0)) if config is not None else 0
    log.warning(
        "FAULT INJECTION (%s=%r, set in this node's node-config): round %d reply corrupted",
        FAULT_KEY,
        spec,
        server_round,
    )
    print(f"fedlingua: FAULT INJECTION {FAULT_KEY}={spec!r}: round {server_round} reply corrupted")
    kind, value = parse_fault(spec)
    if kind == "stall":
        time.sleep(value)
    reply.content[ARRAYS_KEY] = corrupt(
        reply.content[ARRAYS_KEY], spec, seed=derive_seed(context.node_id, server_round)
    )
    return reply


def corrupting(handle_train: Callable, client_id: str, spec: str) -> Callable:
    """`handle_train` whose replies for `client_id` come back corrupted (in-process experiments).

    For the in-process simulation: pass it as the engine's client handler,
    `fedlingua.engine.run(cfg, client_handler=corrupting(handle_train, "lg", "scale:100"))`
    (benchmarks/robust_aggregation.py does).
    """

    def handler(bench, site, content, on_step=None, context=None):
        reply = handle_train(bench, site, content, on_step=on_step, context=context)
        if site.client_id == client_id:
            server_round = int(content[CONFIG_KEY]["server-round"])
            seed = derive_seed(client_id, server_round)
            reply[ARRAYS_KEY] = corrupt(reply[ARRAYS_KEY], spec, seed=seed)
        return reply

    return handler
