"""The sample line's fast path (a regular expression instead of json) against the full path:
same sample or same error for every line, so a device cannot tell which one read its frame."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from harness.link import Sample, encode
from harness.link import fields as f
from harness.link.frame import FrameError, unwrap, wrap
from harness.link.messages import Direction, _device_message, canonical_sample, decode


def full_path(line: bytes) -> object:
    try:
        return _device_message(unwrap(line))
    except FrameError as exc:
        return exc.kind


def either_path(line: bytes) -> object:
    try:
        return decode(line, Direction.DEVICE_TO_HOST)
    except FrameError as exc:
        return exc.kind


def quantity(name: str) -> st.SearchStrategy[float]:
    q = f.QUANTITY_OF[name]
    return st.floats(q.lo, q.hi).map(lambda x: round(x, q.decimals))


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    v = draw(quantity(f.V))
    a = draw(quantity(f.A))
    return Sample(
        seq=draw(st.integers(0, f.U32)),
        boot=draw(st.integers(0, f.U16)),
        ts=draw(st.integers(0, f.U32)),
        dt=draw(st.integers(0, f.U32)),
        v=v,
        a=a,
        w=draw(quantity(f.W)),
        vmin=draw(st.floats(f.VOLTS.lo, v).map(lambda x: min(v, round(x, 3)))),
        vmax=draw(st.floats(v, f.VOLTS.hi).map(lambda x: max(v, round(x, 3)))),
        amax=draw(st.floats(a, f.AMPS.hi).map(lambda x: max(a, round(x, 4)))),
        n=draw(st.integers(0, f.U32)),
        status=draw(st.sampled_from(f.STATUSES)),
    )


@given(samples())
def test_every_sample_a_sender_writes_takes_the_fast_path_and_reads_the_same(s: Sample) -> None:
    line = encode(s)
    fast = canonical_sample(line)
    assert fast is not None, line
    assert repr(fast) == repr(full_path(line))  # repr: -0.0 and 0.0 compare equal
    assert type(fast.v) is float and type(fast.seq) is int and type(fast.status) is str
    assert fast.status is f.STATUSES[f.SEVERITY[s.status]]  # one shared str a status word


EDIT_BYTES = b'0123456789.-+eE",:{}[] \\abnstuxo'


@given(
    samples(),
    st.lists(
        st.tuples(
            st.sampled_from(("put", "insert", "delete")),
            st.integers(0, 200),
            st.integers(0, len(EDIT_BYTES) - 1),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_an_edited_sample_line_reads_the_same_on_both_paths(
    s: Sample, edits: list[tuple[str, int, int]]
) -> None:
    body = bytearray(encode(s).partition(b"*")[0])
    for op, at, b in edits:
        at %= len(body) + (op == "insert")
        byte = EDIT_BYTES[b : b + 1]
        if op == "put" and at < len(body):
            body[at : at + 1] = byte
        elif op == "insert":
            body[at:at] = byte
        elif op == "delete" and len(body) > 1:
            del body[at]
    try:
        line = wrap(bytes(body))
    except FrameError:
        return  # longer than a frame may be: no line to read
    assert repr(either_path(line)) == repr(full_path(line))


def test_lines_that_json_reads_differently_leave_the_fast_path() -> None:
    good = encode(Sample(1, 1, 100, 100, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 10, "ok"))
    body = good.partition(b"*")[0]
    for old, new, why in (
        (b'"v":5.000', b'"v":05.000', "bad_json"),  # JSON has no leading zeros
        (b'"v":5.000', b'"v":5e0', None),  # an exponent: json reads it, the fast path leaves it
        (b'"a":0.2500', b'"a":-0', None),  # json reads the int 0, float() would say -0.0
        (b'"n":10', b'"n":10.0', "bad_type"),
        (b'"status":"ok"', b'"status":"no"', "out_of_range"),
        (b'"seq":1', b'"seq":4294967296', "out_of_range"),
    ):
        line = wrap(body.replace(old, new))
        assert canonical_sample(line) is None, line
        got = either_path(line)
        if why is None:
            assert isinstance(got, Sample) and got.v == 5.0
            assert math.copysign(1.0, got.a) == 1.0
        else:
            assert got == why, (line, got)
    assert either_path(good[:-5] + b"0000\n") == "bad_crc"


def test_a_sample_keeps_its_fields_in_wire_order_where_it_is_read_by_position() -> None:
    """The decoder builds a Sample, and the store and the live statistics unpack one, by
    position: each value must land in its own column, whatever the field."""
    from harness.store.db import SAMPLE_COLUMNS, sample_row

    assert Sample._fields == f.SAMPLE_KEYS
    s = Sample(1, 2, 3, 4, 5.5, 0.25, 1.375, 5.25, 5.75, 0.5, 7, "ok")
    row = dict(zip(SAMPLE_COLUMNS, sample_row(9, s, 100.0, 101.0, "b"), strict=True))
    assert row == {"run": 9, "device": "b", "t": 100.0, "arrived": 101.0} | s._asdict()
