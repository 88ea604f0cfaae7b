"""DeviceLink: the device end of protocol v1, sans-IO — what the firmware's powerlink core does.

The application (the mock's electrical model, or a test) adds readings; the link folds them
into the pending sample, closes a sample each report interval while its window of unacknowledged
samples has room, and keeps folding while the window is full, so a slow link coarsens the time
resolution and never loses time. It executes each command seq once and answers a repeat from
its cached reply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.link import commands, seqnum
from harness.link import fields as f
from harness.link.commands import Settings
from harness.link.events import CommandExecuted, CorruptFrame, DeviceEvent, Resent, SampleClosed
from harness.link.frame import Broken, FrameError, LineSplitter
from harness.link.messages import (
    Ack,
    Command,
    Direction,
    Hello,
    Nack,
    Reply,
    Sample,
    decode,
    encode,
)


@dataclass(frozen=True, slots=True)
class Readings:
    """Sensor readings taken since the last call, already aggregated (n=1: a single reading).
    `fault` is "ovf" (INA219 math overflow) or "i2c" (reads failed; n may be 0)."""

    n: int
    v: float
    a: float
    w: float
    vmin: float
    vmax: float
    amax: float
    wmax: float
    fault: str | None = None

    @classmethod
    def one(cls, v: float, a: float, w: float, fault: str | None = None) -> Readings:
        return cls(1, v, a, w, v, v, a, w, fault)

    @classmethod
    def failed(cls) -> Readings:
        return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f.STATUS_I2C)


def _wire(value: float, q: f.Quantity) -> float:
    """A value as the wire carries it: clamped to the range, at the sender's resolution."""
    return round(min(max(value, q.lo), q.hi), q.decimals)


class _Pending:
    """The sample being accumulated: sums and extremes since `start_ms`."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.n = 0
        self.failures = 0
        self.vsum = self.asum = self.wsum = 0.0
        self.vmin = self.vmax = self.amax = self.wmax = math.nan
        self.severity = 0

    @property
    def empty(self) -> bool:
        return self.n == 0 and self.failures == 0

    def add(self, r: Readings, settings: Settings) -> None:
        if r.n == 0:
            self.failures += 1
        else:
            first = self.n == 0
            self.n += r.n
            self.vsum += r.v * r.n
            self.asum += r.a * r.n
            self.wsum += r.w * r.n
            self.vmin = r.vmin if first else min(self.vmin, r.vmin)
            self.vmax = r.vmax if first else max(self.vmax, r.vmax)
            self.amax = r.amax if first else max(self.amax, r.amax)
            self.wmax = r.wmax if first else max(self.wmax, r.wmax)
            status = settings.status_of(r.vmin, r.amax, r.wmax)
            self.severity = max(self.severity, f.SEVERITY[status])
        if r.fault is not None:
            self.severity = max(self.severity, f.SEVERITY[r.fault])

    def close(self, seq: int, boot: int, ts: int) -> Sample:
        n = self.n
        if n == 0:
            v = a = w = vmin = vmax = amax = 0.0
        else:
            v, a, w = self.vsum / n, self.asum / n, self.wsum / n
            vmin, vmax, amax = self.vmin, self.vmax, self.amax
        vmin, v, vmax = sorted((_wire(vmin, f.VOLTS), _wire(v, f.VOLTS), _wire(vmax, f.VOLTS)))
        a, amax = _wire(a, f.AMPS), _wire(amax, f.AMPS)
        return Sample(
            seq=seq,
            boot=boot,
            ts=ts,
            dt=ts - self.start_ms,
            v=v,
            a=min(a, amax),
            w=_wire(w, f.WATTS),
            vmin=vmin,
            vmax=vmax,
            amax=amax,
            n=min(n, f.U32),
            status=f.STATUSES[self.severity],
        )


@dataclass(frozen=True, slots=True)
class DeviceTiming:
    rto: float = 0.3
    """Resend the window when no ACK progress came for this long; doubled each time."""
    rto_max: float = 2.0


class DeviceLink:
    """The device end of a protocol v1 link."""

    def __init__(
        self,
        *,
        now: float,
        boot: int = 0,
        fw: str = f.FIRMWARE_VERSION,
        settings: Settings = Settings(),
        win: int = f.WINDOW,
        timing: DeviceTiming = DeviceTiming(),
        first_seq: int = 0,
    ) -> None:
        self.boot = boot
        self.fw = fw
        self.settings = settings
        self.win = win
        self.timing = timing
        self._t0 = now
        self._now = now
        self._splitter = LineSplitter()
        self._logs = bytearray()
        """`#` lines for people, sent before the frames due (as the firmware sends its log
        line before it starts the next frame)."""
        self._out = bytearray()
        self._base = first_seq
        self._next = first_seq
        self._window: dict[int, bytes] = {}
        self._to_send: set[int] = set()
        self._pending = _Pending(0)
        self._rto = timing.rto
        self._rto_deadline: float | None = None
        self._last_cmd = -1
        self._cached_reply = b""
        self.corrupt = 0
        self._out += encode(self._hello(None))

    # --- public API ------------------------------------------------------------------------

    def ms(self, now: float) -> int:
        """Device time: whole milliseconds since boot."""
        return math.floor((now - self._t0) * 1000 + 1e-6)

    def add_readings(self, now: float, readings: Readings) -> list[DeviceEvent]:
        """Fold readings taken up to `now` into the pending sample."""
        self._pending.add(readings, self.settings)
        events: list[DeviceEvent] = []
        self._tick(now, events)
        return events

    def feed(self, data: bytes, now: float) -> list[DeviceEvent]:
        """Take bytes from the host: ACKs, NACKs and commands. Timers up to `now` run too."""
        events: list[DeviceEvent] = []
        for line in self._splitter.lines(data, now):
            if isinstance(line, Broken):
                self._corrupt(FrameError(line.kind, "line dropped"), b"", now, events)
            else:
                self._on_line(line, now, events)
        self._tick(now, events)
        return events

    def poll(self, now: float) -> list[DeviceEvent]:
        events: list[DeviceEvent] = []
        self._tick(now, events)
        return events

    def log(self, text: str) -> None:
        """Queue a log line: `text` as the device prints it, starting with `#`."""
        if not text.startswith("#"):
            raise ValueError(f"a log line starts with #: {text!r}")
        self._logs += text.encode("ascii") + b"\n"

    def data_to_send(self) -> bytes:
        """Log lines first, then replies, then the samples due (new, NACKed or timed out) in
        seq order."""
        data = self._logs + self._out
        self._logs = bytearray()
        for seq in sorted(self._to_send, key=lambda s: seqnum.diff(s, self._base)):
            data += self._window[seq]
        self._to_send.clear()
        self._out = bytearray()
        return bytes(data)

    def next_line(self) -> bytes:
        """One line of what `data_to_send` would give, b"" when nothing is due: for a device
        that starts a line only when its UART has room, as the firmware does, so a resend asked
        for now goes out before samples that have not started yet."""
        if self._logs:
            end = self._logs.find(b"\n") + 1
            line = bytes(self._logs[:end])
            del self._logs[:end]
            return line
        if self._out:
            end = self._out.find(b"\n") + 1 or len(self._out)
            line = bytes(self._out[:end])
            del self._out[:end]
            return line
        if self._to_send:
            seq = min(self._to_send, key=lambda s: seqnum.diff(s, self._base))
            self._to_send.discard(seq)
            return self._window[seq]
        return b""

    @property
    def has_output(self) -> bool:
        return bool(self._logs or self._out or self._to_send)

    def next_deadline(self) -> float | None:
        """When `poll` is next due. The interval's end counts only while the window has room and
        the pending sample holds a reading or the end is still ahead (a sample needs a reading)."""
        times = [] if self._rto_deadline is None else [self._rto_deadline]
        if len(self._window) < self.win:
            end = self._t0 + (self._pending.start_ms + self.settings.interval_ms) / 1000
            if not self._pending.empty or end > self._now:
                times.append(end)
        return min(times) if times else None

    @property
    def awaiting_reading(self) -> bool:
        """The interval is over and room is free, but the pending sample has no reading yet:
        the application should add the next reading as soon as it has one."""
        due = self.ms(self._now) - self._pending.start_ms >= self.settings.interval_ms
        return due and self._pending.empty and len(self._window) < self.win

    @property
    def window(self) -> tuple[int, ...]:
        """Seqs sent and not yet acknowledged, oldest first."""
        return tuple(sorted(self._window, key=lambda s: seqnum.diff(s, self._base)))

    # --- internals -------------------------------------------------------------------------

    def _hello(self, ack: int | None) -> Hello:
        return Hello(
            boot=self.boot,
            seq=self._base,
            last_cmd=self._last_cmd,
            interval=self.settings.interval_ms,
            win=self.win,
            fw=self.fw,
            ack=ack,
        )

    def _corrupt(self, exc: FrameError, line: bytes, now: float, events: list[DeviceEvent]) -> None:
        self.corrupt += 1
        events.append(CorruptFrame(exc.kind, line, now))
        self._out += encode(Reply(-1, exc.kind))

    def _on_line(self, line: bytes, now: float, events: list[DeviceEvent]) -> None:
        try:
            msg = decode(line, Direction.HOST_TO_DEVICE)
        except FrameError as exc:
            self._corrupt(exc, line, now, events)
            return
        match msg:
            case Ack(boot=boot) if boot == self.boot:
                self._on_ack(msg.seq, now)
            case Nack(boot=boot) if boot == self.boot:
                resend = tuple(s for s in msg.seqs if s in self._window)
                if resend:
                    self._to_send.update(resend)
                    events.append(Resent(resend, "nack", now))
            case Command():
                self._on_command(msg, now, events)
            # Anything else is ignored: `#` text from the host, or an ACK or NACK meant for
            # an earlier boot.

    def _on_ack(self, seq: int, now: float) -> None:
        if not (seqnum.diff(seq, self._base) >= 0 and seqnum.diff(seq, self._next) < 0):
            return  # old, or for a seq never sent
        while seqnum.diff(self._base, seq) <= 0:
            self._window.pop(self._base, None)
            self._to_send.discard(self._base)
            self._base = seqnum.add(self._base, 1)
        self._rto = self.timing.rto
        self._rto_deadline = now + self._rto if self._window else None

    def _on_command(self, c: Command, now: float, events: list[DeviceEvent]) -> None:
        if c.boot is not None and c.boot != self.boot:
            self._out += encode(Reply(c.seq, commands.ERR_BOOT))
            return
        if c.name == "hello":  # a sync point: always answered, not part of exactly-once
            self._out += encode(self._hello(c.seq))
            self._to_send.update(self._window)  # the new host has seen none of it
            if self._window:
                self._rto = self.timing.rto
                self._rto_deadline = now + self._rto
            return
        if c.seq == self._last_cmd:
            self._out += self._cached_reply
            return
        if self._last_cmd >= 0 and seqnum.diff(c.seq, self._last_cmd) < 0:
            self._out += encode(Reply(c.seq, commands.ERR_STALE))
            return
        err = commands.check(c.name, c.args)
        if err is None:
            self.settings = commands.apply(self.settings, c.name, c.args)
        reply = Reply(c.seq, err)
        self._last_cmd = c.seq
        self._cached_reply = encode(reply)
        self._out += self._cached_reply
        events.append(CommandExecuted(c, reply, now))

    def _tick(self, now: float, events: list[DeviceEvent]) -> None:
        self._now = now
        if self._rto_deadline is not None and now >= self._rto_deadline:
            self._to_send.update(self._window)
            events.append(Resent(self.window, "timeout", now))
            self._rto = min(self._rto * 2, self.timing.rto_max)
            self._rto_deadline = now + self._rto
        ms = self.ms(now)
        p = self._pending
        due = ms - p.start_ms >= self.settings.interval_ms
        if due and not p.empty and len(self._window) < self.win:
            sample = p.close(self._next, self.boot, ms)
            self._window[self._next] = encode(sample)
            self._to_send.add(self._next)
            self._next = seqnum.add(self._next, 1)
            self._pending = _Pending(ms)
            if self._rto_deadline is None:
                self._rto_deadline = now + self._rto
            events.append(SampleClosed(sample, now))
