"""What crosses the wire: trainable tensors in Flower records, validated and measured.

Communication is measured from the serialized payload (the protobuf bytes of
the message content Flower sends), never estimated from shapes. Received
tensors are checked against the expected names, shapes and finiteness before
they touch a model, and a record is first checked by size (`check_record_size`: never
more bytes than the expected tensors can take), so an oversized reply is refused
before any of it is decoded; arrays are decoded with numpy's pickle-free loader
(`allow_pickle=False`), and data it cannot decode is a `PayloadError`, never a crash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict

ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
CLIENT_KEY = "client"
CONTROL_KEY = "scaffold-control"  # SCAFFOLD: the server's control variate c (to clients)
CONTROL_DELTA_KEY = "scaffold-control-delta"  # SCAFFOLD: a client's c_i+ - c_i (replies)


class PayloadError(ValueError):
    """Tensors from a peer that do not match what was expected."""


def state_to_record(state: Mapping[str, torch.Tensor]) -> ArrayRecord:
    return ArrayRecord({k: Array(v.detach().cpu().numpy()) for k, v in state.items()})


def record_to_state(
    record: ArrayRecord, expected: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, torch.Tensor]:
    """Decode an ArrayRecord; with `expected` (name -> shape) reject anything else."""
    try:
        state = {k: torch.from_numpy(np.array(a.numpy(), copy=True)) for k, a in record.items()}
    except Exception as exc:  # bytes from a peer that numpy cannot (or must not) decode
        raise PayloadError(f"undecodable tensor data: {type(exc).__name__}: {exc}") from exc
    if expected is not None:
        check_state(state, expected)
    return state


MAX_ITEMSIZE = 8  # bytes per element of the widest floating-point dtype a reply may use
HEADER_ALLOWANCE = 1024  # bytes per tensor for numpy's .npy header (about 128 in practice)


def record_size_limit(expected: Mapping[str, tuple[int, ...]]) -> int:
    """The most bytes a record of the `expected` tensors can hold: every element at the
    widest floating-point dtype, plus a header allowance per tensor."""
    elements = sum(int(np.prod(shape, dtype=np.int64)) for shape in expected.values())
    return elements * MAX_ITEMSIZE + HEADER_ALLOWANCE * len(expected)


def check_record_size(record: ArrayRecord, expected: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a record holding more bytes than the `expected` tensors can take (an
    oversized or padded reply), reading only the lengths of its byte strings."""
    size = sum(len(array.data) for array in record.values())
    limit = record_size_limit(expected)
    if size > limit:
        raise PayloadError(
            f"{size} bytes of tensor data in {len(record)} tensor(s), more than the {limit} "
            f"bytes the {len(expected)} expected tensors can take: refused before decoding"
        )


def check_state(state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise PayloadError(f"tensor names differ: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, shape in expected.items():
        t = state[name]
        if tuple(t.shape) != tuple(shape):
            raise PayloadError(f"{name}: shape {tuple(t.shape)}, expected {tuple(shape)}")
        if not t.is_floating_point():
            raise PayloadError(f"{name}: dtype {t.dtype}, expected a floating-point tensor")
        if not torch.isfinite(t).all():
            raise PayloadError(f"{name}: contains NaN or infinite values")


def serialize(content: RecordDict) -> bytes:
    return recorddict_to_proto(content).SerializeToString()


def deserialize(blob: bytes) -> RecordDict:
    try:
        proto = ProtoRecordDict()
        proto.ParseFromString(blob)
        return recorddict_from_proto(proto)
    except Exception as exc:  # protobuf DecodeError, or a record Flower cannot rebuild
        raise PayloadError(f"undecodable message: {type(exc).__name__}: {exc}") from exc


def payload_bytes(content: RecordDict) -> int:
    """Size in bytes of the serialized message content."""
    return len(serialize(content))


# what a training reply's metrics may hold: name -> (kind, lower bound, upper bound)
TRAIN_METRICS: dict[str, tuple[str, float, float]] = {
    "num-examples": ("int", 1, 10**9),
    "steps": ("int", 0, 10**9),
    "train-loss": ("float", 0.0, 1e6),
    "train-loss-last": ("float", 0.0, 1e6),
    "compute-s": ("float", 0.0, 1e7),
    "norm_bit": ("float", 0.0, 1.0),  # Flower's adaptive clipping mod: was the update clipped
}


def check_train_metrics(metrics: Mapping, max_examples: int | None = None) -> dict:
    """A training reply's metrics, each of its declared kind, finite and within bounds
    (`num-examples` at most `max_examples`, what the site declared at the roll call);
    anything else is a `PayloadError`. What FedAvg weighs by can then never be NaN, inf,
    a list, or a count that outweighs the honest sites."""
    out = {}
    for key, value in metrics.items():
        if key not in TRAIN_METRICS:
            raise PayloadError(f"undeclared metric {key!r}")
        kind, low, high = TRAIN_METRICS[key]
        if key == "num-examples" and max_examples is not None:
            high = max_examples
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "int" and not isinstance(value, int) or not number:
            raise PayloadError(f"metric {key!r} is not one {kind}")
        if not (math.isfinite(value) and low <= value <= high):
            raise PayloadError(f"metric {key!r} = {value!r} is outside [{low:g}, {high:g}]")
        out[key] = value
    if "num-examples" not in out:
        raise PayloadError("no num-examples")
    return out
