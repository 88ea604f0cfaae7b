"""Messages of protocol v1 as typed values, and their encoding to and decoding from frames.

`decode(line, direction)` gives a message or raises FrameError; `encode(message)` gives the
framed line. The direction matters: `ack` from a device answers a command, from the host it
acknowledges samples.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from harness.link import fields as f
from harness.link.frame import FrameError, crc16, dumps, is_log_line, unwrap, wrap


class Direction(enum.Enum):
    DEVICE_TO_HOST = "d2h"
    HOST_TO_DEVICE = "h2d"


class Sample(NamedTuple):
    """One report: averages of `n` readings over the device time (ts - dt, ts] ms.

    A named tuple rather than a frozen dataclass, as are the two records that carry it
    (`SampleReceived`, `SampleEvent`): every frame makes one of each, and a tuple is as
    immutable while it is built in one step, where a frozen dataclass sets each field through
    `object.__setattr__` (docs/performance.md has the cost of each)."""

    seq: int
    boot: int
    ts: int
    dt: int
    v: float
    a: float
    w: float
    vmin: float
    vmax: float
    amax: float
    n: int
    status: str


@dataclass(frozen=True, slots=True)
class Hello:
    """Sent by the device at boot and in answer to the `hello` command (then `ack` is set)."""

    boot: int
    seq: int
    """The oldest seq not yet acknowledged: where a host that syncs now starts."""
    last_cmd: int
    """The last command seq this boot executed, -1 if none."""
    interval: int
    win: int
    fw: str = f.FIRMWARE_VERSION
    ack: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A device's answer to a command: `{"ack":seq,"result":"ok"}` or `{"nack":seq,"err":..}`.
    seq is -1 when the device could not read the command line at all."""

    seq: int
    err: str | None = None

    @property
    def ok(self) -> bool:
        return self.err is None


@dataclass(frozen=True, slots=True)
class DeviceLog:
    """A `#` line: free text for people, never parsed."""

    text: str


@dataclass(frozen=True, slots=True)
class Ack:
    """Host to device: every sample of `boot` up to and including `seq` has arrived."""

    seq: int
    boot: int


@dataclass(frozen=True, slots=True)
class Nack:
    """Host to device: please resend these seqs of `boot` now."""

    seqs: tuple[int, ...]
    boot: int


@dataclass(frozen=True, slots=True)
class Command:
    """Host to device. `args` are validated by harness.link.commands, not by the frame layer,
    so that a device can answer a bad argument with a NACK naming the command's seq."""

    name: str
    seq: int
    args: Mapping[str, Any] = field(default_factory=dict)
    boot: int | None = None


Message = Sample | Hello | Reply | DeviceLog | Ack | Nack | Command

# --- field checks -------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        raise FrameError("missing_field", f"{key}: missing")
    return obj[key]


def _int(obj: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError("bad_type", f"{key}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise FrameError("out_of_range", f"{key}: {value} not in {lo}..{hi}")
    return value


def _num(obj: Mapping[str, Any], key: str, q: f.Quantity) -> float:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FrameError("bad_type", f"{key}: expected a number, got {value!r}")
    if not (math.isfinite(value) and q.lo <= value <= q.hi):
        raise FrameError("out_of_range", f"{key}: {value} not in {q.lo}..{q.hi} {q.unit}")
    return float(value)


def _str(obj: Mapping[str, Any], key: str, choices: tuple[str, ...] | None = None) -> str:
    value = _get(obj, key)
    if not isinstance(value, str):
        raise FrameError("bad_type", f"{key}: expected a string, got {value!r}")
    if choices is not None and value not in choices:
        raise FrameError("out_of_range", f"{key}: {value!r} not one of {', '.join(choices)}")
    if not 0 < len(value) <= 16:
        raise FrameError("out_of_range", f"{key}: 1 to 16 characters")
    return value


def _opt_int(obj: Mapping[str, Any], key: str, lo: int, hi: int) -> int | None:
    return _int(obj, key, lo, hi) if key in obj else None


# --- decoding -----------------------------------------------------------------------------


_V_HI, _A_HI, _W_HI = f.VOLTS.hi, f.AMPS.hi, f.WATTS.hi
_U16, _U32, _SEVERITY = f.U16, f.U32, f.SEVERITY


def _typed_sample(
    seq: Any,
    boot: Any,
    ts: Any,
    dt: Any,
    v: Any,
    a: Any,
    w: Any,
    vmin: Any,
    vmax: Any,
    amax: Any,
    n: Any,
    status: str,
) -> Sample | None:
    """A Sample of integers and floats read from JSON values or number text, if every value is
    in range (the checks `_sample_checked` names); None if not. Checked on locals before the
    tuple is built: it runs for every frame."""
    seq, boot, ts, dt, n = int(seq), int(boot), int(ts), int(dt), int(n)
    v, a, w = float(v), float(a), float(w)
    vmin, vmax, amax = float(vmin), float(vmax), float(amax)
    if (
        0 <= seq <= _U32
        and 0 <= boot <= _U16
        and 0 <= ts <= _U32
        and 0 <= dt <= _U32
        and 0 <= n <= _U32
        and 0.0 <= vmin <= v <= vmax <= _V_HI
        and -_A_HI <= a <= amax <= _A_HI
        and 0.0 <= w <= _W_HI
        and status in _SEVERITY
    ):
        return _new_sample(Sample, (seq, boot, ts, dt, v, a, w, vmin, vmax, amax, n, status))
    return None


def _sample(obj: Mapping[str, Any]) -> Sample:
    """The common case (every field present, well typed, in range) checked inline; anything
    else goes through the field-by-field check that names the first problem."""
    try:
        seq, boot, ts, dt, n = obj[f.SEQ], obj[f.BOOT], obj[f.TS], obj[f.DT], obj[f.N]
        v, a, w = obj[f.V], obj[f.A], obj[f.W]
        vmin, vmax, amax, status = obj[f.VMIN], obj[f.VMAX], obj[f.AMAX], obj[f.STATUS]
    except KeyError:
        return _sample_checked(obj)
    if (
        type(seq) is int
        and type(boot) is int
        and type(ts) is int
        and type(dt) is int
        and type(n) is int
        and type(v) in _NUMBER
        and type(a) in _NUMBER
        and type(w) in _NUMBER
        and type(vmin) in _NUMBER
        and type(vmax) in _NUMBER
        and type(amax) in _NUMBER
        and type(status) is str
    ):
        s = _typed_sample(seq, boot, ts, dt, v, a, w, vmin, vmax, amax, n, status)
        if s is not None:
            return s
    return _sample_checked(obj)


def _canonical_pattern() -> re.Pattern[bytes]:
    """A whole sample line as senders write it: SAMPLE_KEYS in order, no spaces, JSON's own
    number grammar without exponents (so `05` or `1e3` do not match), then the CRC."""
    integer = rb"((?>0|[1-9][0-9]*))"  # atomic groups: no backtracking, same lines match
    # A bare -0 stays on the json path: json reads it as the int 0, not the float -0.0 (every
    # number but the last is followed by a comma; the last value is the status).
    number = rb"((?>(?:-(?!0,))?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?))"
    pairs = []
    for key in f.SAMPLE_KEYS:
        if key in f.QUANTITY_OF:
            value = number
        elif key == f.STATUS:
            value = rb'"([0-9a-z]{1,16})"'
        else:
            value = integer
        pairs.append(b'"' + key.encode("ascii") + b'":' + value)
    return re.compile(rb"(\{" + b",".join(pairs) + rb"\})\*([0-9A-F]{4})\r?\n?")


_CANONICAL = _canonical_pattern()
_STATUS_TEXT = {status.encode("ascii"): status for status in f.STATUSES}
"""The status words as the str objects every sample shares (a word is not decoded into a new
str a sample: each sample a store or a page holds would carry its own copy)."""
_new_sample = tuple.__new__
"""Builds a Sample from a tuple of its fields in order, without the keyword-taking __new__."""


def canonical_sample(line: bytes) -> Sample | None:
    """The frame a device sends most, read without json: a sample line in the canonical layout
    with a good CRC and every value in range. None for anything else, which then takes the
    full path (`unwrap`, `_sample`) and so gets the same result or the same error. A property
    test holds the two paths equal."""
    if len(line) >= f.MAX_LINE:
        return None
    m = _CANONICAL.fullmatch(line)
    if m is None:
        return None
    body, seq, boot, ts, dt, v, a, w, vmin, vmax, amax, n, status, crc = m.groups()
    if int(crc, 16) != crc16(body):
        return None
    text = _STATUS_TEXT.get(status) or status.decode("ascii")
    return _typed_sample(seq, boot, ts, dt, v, a, w, vmin, vmax, amax, n, text)


_NUMBER = frozenset((int, float))


def _sample_checked(obj: Mapping[str, Any]) -> Sample:
    values: dict[str, Any] = {}
    for key in f.SAMPLE_KEYS:
        if key in f.QUANTITY_OF:
            values[key] = _num(obj, key, f.QUANTITY_OF[key])
        elif key == f.STATUS:
            values[key] = _str(obj, key, f.STATUSES)
        else:
            values[key] = _int(obj, key, 0, f.U16 if key in f.U16_FIELDS else f.U32)
    s = Sample(**values)
    if not s.vmin <= s.v <= s.vmax:
        raise FrameError("out_of_range", f"v: {s.v} outside vmin..vmax {s.vmin}..{s.vmax}")
    if s.a > s.amax:
        raise FrameError("out_of_range", f"a: {s.a} above amax {s.amax}")
    return s


def _hello(obj: Mapping[str, Any]) -> Hello:
    _str(obj, f.HELLO, (f.PROTOCOL,))
    return Hello(
        fw=_str(obj, f.FW),
        boot=_int(obj, f.BOOT, 0, f.U16),
        seq=_int(obj, f.SEQ, 0, f.U32),
        interval=_int(obj, f.INTERVAL, *f.INTERVAL_MS),
        win=_int(obj, f.WIN, 1, f.WINDOW),
        last_cmd=_int(obj, f.CMD_SEQ, -1, f.U32),
        ack=_opt_int(obj, f.ACK, 0, f.U32),
    )


def _device_message(obj: Mapping[str, Any]) -> Message:
    if f.HELLO in obj:
        return _hello(obj)
    if f.NACK in obj:
        return Reply(seq=_int(obj, f.NACK, -1, f.U32), err=_str(obj, f.ERR))
    if f.ACK in obj:
        seq = _int(obj, f.ACK, 0, f.U32)
        _str(obj, f.RESULT, ("ok",))
        return Reply(seq=seq)
    if f.SEQ in obj:
        return _sample(obj)
    raise FrameError("unknown_message", f"no known key among {sorted(obj)}")


_COMMAND_FRAME_KEYS: Final = frozenset((f.CMD, f.SEQ, f.BOOT))


def _host_message(obj: Mapping[str, Any]) -> Message:
    if f.CMD in obj:
        name = _str(obj, f.CMD)
        seq = _int(obj, f.SEQ, 0, f.U32)
        boot = _opt_int(obj, f.BOOT, 0, f.U16)
        args = {k: v for k, v in obj.items() if k not in _COMMAND_FRAME_KEYS}
        return Command(name=name, seq=seq, args=args, boot=boot)
    if f.NACK in obj:
        seqs = _get(obj, f.NACK)
        if not isinstance(seqs, list):
            raise FrameError("bad_type", f"nack: expected a list of seqs, got {seqs!r}")
        if not 1 <= len(seqs) <= f.MAX_NACK_SEQS or not all(0 <= s <= f.U32 for s in seqs):
            raise FrameError("out_of_range", f"nack: 1 to {f.MAX_NACK_SEQS} seqs in 0..{f.U32}")
        return Nack(seqs=tuple(seqs), boot=_int(obj, f.BOOT, 0, f.U16))
    if f.ACK in obj:
        return Ack(seq=_int(obj, f.ACK, 0, f.U32), boot=_int(obj, f.BOOT, 0, f.U16))
    raise FrameError("unknown_message", f"no known key among {sorted(obj)}")


def decode(line: bytes, direction: Direction) -> Message:
    """Decode one received line (its newline optional). Raises FrameError."""
    if direction is Direction.DEVICE_TO_HOST and (s := canonical_sample(line)) is not None:
        return s  # most lines, so tried first (a log line fails it at its first byte)
    if is_log_line(line):
        return DeviceLog(line[1:].rstrip(b"\r\n").decode("ascii", "replace").strip())
    if direction is Direction.DEVICE_TO_HOST:
        return _device_message(unwrap(line))
    obj = unwrap(line)
    return _host_message(obj)


# --- encoding -----------------------------------------------------------------------------


def fixed(value: float, decimals: int) -> str:
    """A number with a fixed count of decimals, as senders write it (never `-0.000`)."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _raw(pairs: list[tuple[str, str]]) -> bytes:
    return ("{" + ",".join(f'"{k}":{v}' for k, v in pairs) + "}").encode("ascii")


def _sample_body(s: Sample) -> bytes:
    pairs = []
    for key in f.SAMPLE_KEYS:
        value = getattr(s, key)
        if key in f.QUANTITY_OF:
            pairs.append((key, fixed(value, f.QUANTITY_OF[key].decimals)))
        elif key == f.STATUS:
            pairs.append((key, f'"{value}"'))
        else:
            pairs.append((key, str(value)))
    return _raw(pairs)


def _command_body(c: Command) -> bytes:
    pairs = [(f.CMD, f'"{c.name}"')]
    for key, value in c.args.items():
        q = f.THRESHOLD_OF.get(key) if c.name == "set_threshold" else None
        if q is not None and isinstance(value, int | float) and not isinstance(value, bool):
            pairs.append((key, fixed(value, q.decimals)))
        else:
            pairs.append((key, json.dumps(value, separators=(",", ":"), allow_nan=False)))
    pairs.append((f.SEQ, str(c.seq)))
    if c.boot is not None:
        pairs.append((f.BOOT, str(c.boot)))
    return _raw(pairs)


_ACK_KEY, _BOOT_KEY = f.ACK.encode("ascii"), f.BOOT.encode("ascii")


def encode(msg: Message) -> bytes:
    """The framed line for a message, newline included."""
    match msg:
        case Sample():
            return wrap(_sample_body(msg))
        case Hello():
            obj: dict[str, Any] = {
                f.HELLO: f.PROTOCOL,
                f.FW: msg.fw,
                f.BOOT: msg.boot,
                f.SEQ: msg.seq,
                f.INTERVAL: msg.interval,
                f.WIN: msg.win,
                f.CMD_SEQ: msg.last_cmd,
            }
            if msg.ack is not None:
                obj[f.ACK] = msg.ack
            return wrap(dumps(obj))
        case Reply(err=None):
            return wrap(dumps({f.ACK: msg.seq, f.RESULT: "ok"}))
        case Reply():
            return wrap(dumps({f.NACK: msg.seq, f.ERR: msg.err}))
        case DeviceLog():
            text = "".join(c if " " <= c <= "~" else "?" for c in msg.text)
            return b"# " + text.encode("ascii") + b"\n"
        case Ack():  # the host sends one every two samples: formatted, not json.dumps'd
            return wrap(b'{"%s":%d,"%s":%d}' % (_ACK_KEY, msg.seq, _BOOT_KEY, msg.boot))
        case Nack():
            return wrap(dumps({f.NACK: list(msg.seqs), f.BOOT: msg.boot}))
        case Command():
            return wrap(_command_body(msg))
    raise TypeError(f"not a protocol message: {msg!r}")
