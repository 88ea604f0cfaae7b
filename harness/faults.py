"""Link fault injection: drop, corrupt, duplicate, reorder, delay, outage, garbage, rate limit
and Gilbert-Elliott burst loss, each direction on its own, seeded so a run replays exactly.

`FaultyPipe` is one direction, sans-IO: `send(bytes, now)` puts bytes in, `receive(now)` takes
out what has come through by `now`, `next_deadline()` says when more will. Faults apply to whole
frames (lines); an unfinished line is held until its newline (or passed on as it is after
`PARTIAL_FLUSH` seconds or MAX_LINE bytes, as raw noise would be). Every fault it injects is
recorded as a FaultEvent. The knobs mean what netem's do (tc-netem(8)).

Replay: a frame's fate is drawn from a generator seeded with (seed, direction, the frame's bytes,
how many times those bytes were drawn for before), not from one shared sequence, so the same
seed gives the same faults even when tasks interleave differently within one instant. While no
random fault is set nothing is drawn, and a clean link keeps no record of its frames.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Final

from harness.link.fields import MAX_LINE

PARTIAL_FLUSH: Final = 0.2
MAX_HOLD: Final = 0.5
"""A frame held back for reordering is let go after this long even if no later frame came."""
SEEN_FRAMES: Final = 4096
"""Distinct recent frames whose repeats are counted (a resend repeats a recent frame)."""
MAX_BIT_FLIPS: Final = 3
"""A corrupted frame gets 1..3 flipped bits: CRC-16/CCITT detects all of them in a frame."""

_SEQ = re.compile(rb'"(seq|ack|nack)":\[?(-?\d+)')


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """netem `loss gemodel p r 1-h 1-k`: p = P(good->bad), r = P(bad->good) per frame;
    bad_loss (1-h) and good_loss (1-k) are the loss probabilities in each state."""

    p: float
    r: float
    bad_loss: float = 1.0
    good_loss: float = 0.0


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Faults for one direction. Probabilities are per frame; times in seconds."""

    drop: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_gap: int = 1
    """A reordered frame is held back behind this many later frames."""
    delay: float = 0.0
    jitter: float = 0.0
    """Each frame's delay is uniform in delay +- jitter; frames keep their order."""
    garbage: float = 0.0
    """Probability of a burst of 1..16 random bytes before a frame."""
    rate: float | None = None
    """Bytes per second on the wire (a baud rate / 10); None is unlimited."""
    burst: GilbertElliott | None = None

    def with_changes(self, **changes: Any) -> FaultConfig:
        return replace(self, **changes)

    @property
    def draws(self) -> bool:
        """Whether a frame's fate is drawn: any random fault (delay, rate and outages are not)."""
        return bool(
            self.drop
            or self.corrupt
            or self.duplicate
            or self.reorder
            or self.jitter
            or self.garbage
            or self.burst is not None
        )


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """The faults of both directions of a link."""

    to_host: FaultConfig = FaultConfig()
    to_device: FaultConfig = FaultConfig()


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One injected fault. `what` names the frame (sample, ack, cmd...) and `seq` its number."""

    at: float
    direction: str
    kind: str
    what: str
    seq: int | None


def frame_identity(frame: bytes) -> tuple[str, int | None]:
    """What a frame is and the number it carries, read loosely (it may be corrupt)."""
    if frame.startswith(b"#"):
        return "log", None
    if b'"hello"' in frame:
        what = "hello"
    elif b'"cmd"' in frame:
        what = "cmd"
    elif b'"result"' in frame or b'"err"' in frame:
        what = "reply"
    elif b'"nack"' in frame:
        what = "nack"
    elif b'"ack"' in frame:
        what = "ack"
    elif b'"seq"' in frame:
        what = "sample"
    else:
        return "bytes", None
    m = _SEQ.search(frame)
    return what, int(m.group(2)) if m else None


@dataclass(order=True, slots=True)
class _Scheduled:
    at: float
    order: int
    data: bytes = field(compare=False)


@dataclass(slots=True)
class _Held:
    data: bytes
    remaining: int
    since: float


class FaultyPipe:
    """One direction of a faulty link."""

    def __init__(self, config: FaultConfig, seed: int | str, direction: str) -> None:
        self.config = config
        self.direction = direction
        self._seed = f"{seed}/{direction}".encode()
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._rng = random.Random(0)
        self._partial = bytearray()
        self._partial_since = 0.0
        self._queue: list[_Scheduled] = []
        self._order = 0
        self._held: list[_Held] = []
        self._last_ready = 0.0
        self._line_free = 0.0
        self._bad_state = False
        self._outage_until: float | None = None
        self.events: list[FaultEvent] = []
        self.frames_in = 0
        self.bytes_in = 0

    # --- control ---------------------------------------------------------------------------

    def set_config(self, config: FaultConfig) -> None:
        self.config = config

    def start_outage(self, now: float, duration: float | None = None) -> None:
        """Drop everything from now on, for `duration` seconds or until stop_outage, including
        frames already on their way (delayed, held back or waiting for the line)."""
        self._outage_until = float("inf") if duration is None else now + duration
        self._event(now, "outage_start", b"")
        in_flight = [s.data for s in self._queue if s.at > now] + [h.data for h in self._held]
        self._queue = [s for s in self._queue if s.at <= now]
        heapq.heapify(self._queue)
        self._held.clear()
        for frame in in_flight:
            self._event(now, "outage_drop", frame)

    def stop_outage(self, now: float) -> None:
        if self._outage_until is not None:
            self._outage_until = None
            self._event(now, "outage_end", b"")

    def in_outage(self, now: float) -> bool:
        if self._outage_until is not None and now >= self._outage_until:
            self.stop_outage(self._outage_until)
        return self._outage_until is not None

    # --- data ------------------------------------------------------------------------------

    def send(self, data: bytes, now: float) -> None:
        if not data:
            return
        self.bytes_in += len(data)
        if not self._partial:
            self._partial_since = now
        self._partial += data
        while (nl := self._partial.find(b"\n")) >= 0:
            frame = bytes(self._partial[: nl + 1])
            del self._partial[: nl + 1]
            self._partial_since = now
            self._frame(frame, now)
        if len(self._partial) > MAX_LINE:
            self._flush_partial(now)

    def receive(self, now: float) -> bytes:
        """Bytes that have come out of the pipe by `now`."""
        self.in_outage(now)  # let an outage that has run its time end
        self._release_partial_and_held(now)
        out = bytearray()
        while self._queue and self._queue[0].at <= now:
            out += heapq.heappop(self._queue).data
        return bytes(out)

    def next_deadline(self) -> float | None:
        times = [self._queue[0].at] if self._queue else []
        if self._partial:
            times.append(self._partial_since + PARTIAL_FLUSH)
        times.extend(h.since + MAX_HOLD for h in self._held)
        if self._outage_until is not None and self._outage_until != float("inf"):
            times.append(self._outage_until)
        return min(times) if times else None

    # --- internals -------------------------------------------------------------------------

    def _event(self, now: float, kind: str, frame: bytes) -> None:
        what, seq = frame_identity(frame) if frame else ("link", None)
        self.events.append(FaultEvent(now, self.direction, kind, what, seq))

    def _release_partial_and_held(self, now: float) -> None:
        if self._partial and now >= self._partial_since + PARTIAL_FLUSH:
            self._flush_partial(now)
        for h in [h for h in self._held if now >= h.since + MAX_HOLD]:
            self._held.remove(h)
            self._schedule(h.data, now, allow_hold=False)

    def _flush_partial(self, now: float) -> None:
        data = bytes(self._partial)
        self._partial.clear()
        if not self.in_outage(now):
            self._schedule(data, now, allow_hold=False)

    def _lost(self) -> bool:
        c, rng = self.config, self._rng
        if c.burst is not None:
            ge = c.burst
            self._bad_state = rng.random() >= ge.r if self._bad_state else rng.random() < ge.p
            if rng.random() < (ge.bad_loss if self._bad_state else ge.good_loss):
                return True
        return c.drop > 0 and rng.random() < c.drop

    def _fate(self, frame: bytes) -> random.Random:
        """The generator that decides this frame's faults (see the module docstring)."""
        digest = hashlib.blake2b(frame, digest_size=16, key=self._seed[:64]).digest()
        k = self._seen.pop(digest, 0)
        self._seen[digest] = k + 1
        if len(self._seen) > SEEN_FRAMES:
            self._seen.popitem(last=False)
        self._rng.seed(digest + k.to_bytes(4, "little"))
        return self._rng

    def _frame(self, frame: bytes, now: float) -> None:
        c = self.config
        rng = self._fate(frame) if c.draws else self._rng  # nothing drawn: no repeat counted
        self.frames_in += 1
        if self.in_outage(now):
            self._event(now, "outage_drop", frame)
            return
        if self._lost():
            self._event(now, "burst_drop" if self._bad_state else "drop", frame)
            return
        if c.corrupt and rng.random() < c.corrupt:
            self._event(now, "corrupt", frame)
            buf = bytearray(frame)
            for _ in range(rng.randint(1, MAX_BIT_FLIPS)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            frame = bytes(buf)
        if c.garbage and rng.random() < c.garbage:
            self._event(now, "garbage", frame)
            noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            frame = noise + frame
        copies = 1
        if c.duplicate and rng.random() < c.duplicate:
            self._event(now, "duplicate", frame)
            copies = 2
        for _ in range(copies):
            self._schedule(frame, now, allow_hold=True)

    def _schedule(self, data: bytes, now: float, *, allow_hold: bool) -> None:
        c, rng = self.config, self._rng
        if allow_hold and c.reorder and rng.random() < c.reorder:
            self._event(now, "reorder", data)
            self._held.append(_Held(data, max(1, c.reorder_gap), now))
            return
        ready = now + max(0.0, c.delay + (rng.uniform(-c.jitter, c.jitter) if c.jitter else 0))
        ready = max(ready, self._last_ready)
        self._last_ready = ready
        if c.rate:
            ready = max(ready, self._line_free) + len(data) / c.rate
            self._line_free = ready
        self._order += 1
        heapq.heappush(self._queue, _Scheduled(ready, self._order, data))
        if allow_hold:
            for h in list(self._held):
                h.remaining -= 1
                if h.remaining <= 0:
                    self._held.remove(h)
                    self._schedule(h.data, now, allow_hold=False)
