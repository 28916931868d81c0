"""The tensor payload decoder under random input: bytes from a peer decode into a RecordDict
or fail with a PayloadError; arrays decode into tensors that match what was expected or
fail with a PayloadError; never a protobuf DecodeError, numpy or torch traceback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from fuzz_helpers import tried
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedlingua.federation.payload import (
    PayloadError,
    check_state,
    deserialize,
    record_to_state,
    serialize,
    state_to_record,
)

DTYPES = st.sampled_from(
    [np.float32, np.float64, np.float16, np.int64, np.int8, np.uint16, np.bool_, np.complex64]
)
arrays = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
names = st.text(min_size=1, max_size=8)


@st.composite
def content(draw) -> RecordDict:
    """A message content as a client sends it: arrays, config and metrics records."""
    record = ArrayRecord(
        {k: Array(v) for k, v in draw(st.dictionaries(names, arrays, max_size=3)).items()}
    )
    return RecordDict(
        {
            "arrays": record,
            "config": ConfigRecord(
                draw(st.dictionaries(names, st.integers(-5, 5) | st.text(max_size=5), max_size=2))
            ),
            "metrics": MetricRecord(
                draw(st.dictionaries(names, st.floats(allow_nan=False), max_size=2))
            ),
        }
    )


def _decode_all(blob: bytes) -> None:
    """deserialize + record_to_state on every ArrayRecord: results, or PayloadError only."""
    try:
        rd = deserialize(blob)
    except PayloadError:
        return
    for record in rd.array_records.values():
        try:
            state = record_to_state(record)
        except PayloadError:
            continue
        expected = {k: tuple(t.shape) for k, t in state.items()}
        try:
            check_state(state, expected)
        except PayloadError as err:  # integer, complex or non-finite tensors only
            assert "dtype" in str(err) or "NaN" in str(err), str(err)


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_payload_error(blob):
    tried("payload")
    _decode_all(blob)


@given(content(), st.data())
def test_damaged_message_decodes_or_raises_payload_error(rd, data):
    tried("payload")
    blob = bytearray(serialize(rd))
    assert deserialize(bytes(blob)).array_records.keys() == rd.array_records.keys()
    for _ in range(data.draw(st.integers(1, 4))):  # flip bytes, cut the tail, or both
        if blob and data.draw(st.booleans()):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        else:
            del blob[data.draw(st.integers(0, len(blob))) :]
    _decode_all(bytes(blob))


@given(
    dtype=st.text(max_size=6) | st.sampled_from(["<f4", "float32", "O", "V8", "<U3", "|b1"]),
    shape=st.lists(st.integers(-2, 10**6), max_size=3),
    stype=st.sampled_from(["numpy.ndarray", "torch.Tensor", ""]) | st.text(max_size=5),
    data=st.binary(max_size=200),
)
def test_forged_array_fields_raise_payload_error(dtype, shape, stype, data):
    tried("payload")
    try:
        array = Array(dtype=dtype, shape=tuple(shape), stype=stype, data=data)
    except Exception:  # noqa: BLE001 - Flower refused to build it: nothing reaches the decoder
        assume(False)
    try:
        record_to_state(ArrayRecord({"w": array}))
    except PayloadError:
        return


@given(
    state=st.dictionaries(names, arrays, max_size=3),
    expected=st.dictionaries(names, st.lists(st.integers(0, 4), max_size=3).map(tuple), max_size=3),
)
def test_check_state_accepts_exact_float_match_or_raises_payload_error(state, expected):
    tried("payload")
    tensors = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    try:
        check_state(tensors, expected)
    except PayloadError:
        return
    assert set(tensors) == set(expected)
    assert all(t.is_floating_point() and torch.isfinite(t).all() for t in tensors.values())


@given(
    st.dictionaries(
        names,
        hnp.arrays(
            np.float32,
            hnp.array_shapes(max_dims=3, max_side=4),
            elements=st.floats(-1e6, 1e6, width=32),
        ),
        max_size=3,
    )
)
def test_float_state_round_trips_through_the_wire(state):
    tried("payload")
    tensors = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    blob = serialize(RecordDict({"arrays": state_to_record(tensors)}))
    back = record_to_state(
        deserialize(blob).array_records["arrays"], {k: tuple(t.shape) for k, t in tensors.items()}
    )
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)


# ---- regressions (deterministic) ------------------------------------------------------------
@pytest.mark.parametrize("blob", [b"\xff\xff\xff", b"\x0a\x05hello", b"\x0a"])
def test_undecodable_message_bytes_are_a_payload_error(blob):
    """Was: google.protobuf.message.DecodeError escaping deserialize()."""
    with pytest.raises(PayloadError, match="message"):
        deserialize(blob)
