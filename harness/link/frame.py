"""Frame layer of protocol v1: `<json>*<CRC>\\n` lines, CRC-16/CCITT-FALSE, line splitting.

Checks run in a fixed order so every implementation gives the same error class for a bad line
(docs/protocol.md §1.1): too_long, bad_byte, no_crc, crc_format, bad_crc, bad_json, then the
message layer's unknown_message, missing_field, bad_type, out_of_range.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from harness.link.fields import MAX_LINE

LOG_PREFIX: Final = b"#"
LINE_IDLE: Final = 0.5
"""An unfinished line that gets no byte for this many seconds is dropped (kind `incomplete`):
a frame's bytes travel back to back, so a pause means its newline was lost."""
_HEX: Final = frozenset(b"0123456789ABCDEF")
_PRINTABLE: Final = bytes(range(0x20, 0x7F))

ERROR_KINDS: Final = (
    "incomplete",
    "too_long",
    "bad_byte",
    "no_crc",
    "crc_format",
    "bad_crc",
    "bad_json",
    "unknown_message",
    "missing_field",
    "bad_type",
    "out_of_range",
)


class FrameError(ValueError):
    """A line that is not a valid frame; `kind` is one of ERROR_KINDS."""

    def __init__(self, kind: str, detail: str) -> None:
        assert kind in ERROR_KINDS, kind
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0."""
    return binascii.crc_hqx(data, 0xFFFF)


def wrap(body: bytes) -> bytes:
    """Frame a compact JSON body: append `*`, the CRC as 4 upper-case hex digits and `\\n`."""
    line = b"%s*%04X\n" % (body, crc16(body))
    if len(line) > MAX_LINE:
        raise FrameError("too_long", f"{len(line)} bytes, limit {MAX_LINE}")
    return line


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact JSON for a frame body (no spaces, ASCII only)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")


def _reject_constant(name: str) -> Any:
    raise FrameError("bad_json", f"{name} is not a JSON number")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise FrameError("bad_json", f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _is_flat_value(value: Any) -> bool:
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    return True


def unwrap(line: bytes) -> dict[str, Any]:
    """Check one line (with or without its `\\n`; a `\\r` before it is ignored) and return its
    JSON object. Raises FrameError. Log lines (`#...`) are not frames: see `is_log_line`."""
    if len(line) + (0 if line.endswith(b"\n") else 1) > MAX_LINE:
        raise FrameError("too_long", f"{len(line)} bytes, limit {MAX_LINE}")
    line = line.rstrip(b"\n")
    if line.endswith(b"\r"):
        line = line[:-1]
    if line.translate(None, _PRINTABLE):
        raise FrameError("bad_byte", "byte outside printable ASCII")
    body, star, crc = line.partition(b"*")
    if not star:
        raise FrameError("no_crc", "no '*' before the CRC")
    if len(crc) != 4 or not _HEX.issuperset(crc):
        raise FrameError(
            "crc_format", f"CRC {crc.decode('ascii')!r} is not 4 upper-case hex digits"
        )
    expected = crc16(body)
    if int(crc, 16) != expected:
        raise FrameError("bad_crc", f"CRC {crc.decode('ascii')} but the body gives {expected:04X}")
    if b"\\" in body:
        raise FrameError("bad_json", "escapes are not used in protocol v1")
    return _parse_body(body)


_FAST = json.JSONDecoder()
_STRICT = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)
_KEY_END = re.compile(rb'"\s*:')


def _parse_body(body: bytes) -> dict[str, Any]:
    """json.loads' C fast path for the common frame; the strict decoder (duplicate keys,
    NaN/Infinity) only when the cheap counts say it may matter. Same result either way."""
    strict = b"NaN" in body or b"Infinity" in body
    text = body.decode("ascii").strip(" ")  # printable ASCII: checked before
    try:
        if strict:
            obj = _STRICT.decode(text)
        else:
            obj, end = _FAST.raw_decode(text)
            if end != len(text):
                raise FrameError("bad_json", f"extra data after the object at {end}")
    except ValueError as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, FrameError):
            raise
        raise FrameError("bad_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise FrameError("bad_json", "a frame body is a JSON object")
    nested = body.count(b"{") > 1 or b"[" in body
    keys = body.count(b'":') if b" " not in body else len(_KEY_END.findall(body))
    if not strict and keys != len(obj) and not nested:
        _STRICT.decode(body.decode("ascii"))  # raises bad_json naming the duplicate key
    if nested:
        if not strict:
            _STRICT.decode(text)  # duplicate keys come first (check order)
        for key, value in obj.items():
            if not _is_flat_value(value):
                raise FrameError("bad_type", f"{key}: nested values are not used in protocol v1")
    return obj


def is_log_line(line: bytes) -> bool:
    return line.startswith(LOG_PREFIX)


@dataclass(frozen=True, slots=True)
class Broken:
    """A line the splitter dropped: `kind` is "too_long" or "incomplete"."""

    kind: str


@dataclass(slots=True)
class LineSplitter:
    """Cuts a byte stream into lines. Memory is bounded: a line longer than MAX_LINE is
    discarded as it arrives and reported once, when its newline comes; an unfinished line
    that waits LINE_IDLE seconds for its next byte is discarded when the next byte comes."""

    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False
    _last: float = 0.0

    def feed(self, data: bytes, now: float) -> list[bytes | Broken]:
        out: list[bytes | Broken] = []
        if not data:
            return out
        if (self._buf or self._overflow) and now - self._last > LINE_IDLE:
            if self._overflow or self._buf.strip(b"\r"):  # only CRs: a blank line, not a frame
                out.append(Broken("incomplete"))
            self._buf.clear()
            self._overflow = False
        self._last = now
        start = 0
        if not self._buf and not self._overflow:
            # Nothing pending: the complete lines are slices of `data` (the common case).
            while (nl := data.find(b"\n", start)) >= 0:
                out.append(
                    data[start : nl + 1] if nl + 1 - start <= MAX_LINE else Broken("too_long")
                )
                start = nl + 1
            if len(data) - start > MAX_LINE:
                self._overflow = True
            else:
                self._buf += data[start:]
            return out
        while True:
            nl = data.find(b"\n", start)
            chunk = data[start:] if nl < 0 else data[start : nl + 1]
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > MAX_LINE:
                    self._overflow = True
                    self._buf.clear()
            if nl < 0:
                return out
            out.append(Broken("too_long") if self._overflow else bytes(self._buf))
            self._buf.clear()
            self._overflow = False
            start = nl + 1

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held."""
        return len(self._buf)

    def lines(self, data: bytes, now: float) -> Iterator[bytes | Broken]:
        """The lines worth reading in `data`: the broken ones, and all but blank lines."""
        for line in self.feed(data, now):
            if isinstance(line, Broken) or line.strip(b"\r\n"):
                yield line
