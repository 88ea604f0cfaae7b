"""HostLink: the harness end of protocol v1, sans-IO.

It takes received bytes with the current time and gives back events (samples in seq order,
exactly once per boot; command outcomes; link trouble), the bytes to send (ACKs, NACKs,
commands) and the time it next needs a call. It reads no clock and does no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.link import commands, seqnum
from harness.link.events import (
    CommandDone,
    CommandFailed,
    CorruptFrame,
    DeviceHello,
    DeviceReset,
    DuplicateDropped,
    GapSeen,
    HostEvent,
    HostStats,
    LogLine,
    RetransmissionSeen,
    SampleReceived,
)
from harness.link.fields import MAX_NACK_SEQS, WINDOW
from harness.link.frame import Broken, FrameError, LineSplitter
from harness.link.messages import (
    Ack,
    Command,
    DeviceLog,
    Direction,
    Hello,
    Nack,
    Reply,
    Sample,
    decode,
    encode,
)


@dataclass(slots=True)
class _Outgoing:
    """A command in the host's stop-and-wait queue."""

    handle: int
    name: str
    args: Mapping[str, Any]
    reported: bool
    """False for the host's own sync `hello`: its outcome is not an application event."""
    command: Command | None = None
    sent_at: float = 0.0
    attempts: int = 0
    timeout: float = 0.0
    deadline: float | None = None


@dataclass(slots=True)
class _RestartCheck:
    """Something suggests the device restarted without its boot counter advancing: the boot
    hello again, a seq far behind the window, a frame of an older boot. A copy of an old frame
    looks the same, so the host asks: it sends `hello` at once, outside the stop-and-wait queue
    (a hello executes nothing), and reads the answer (R10)."""

    hello: Command
    """The `hello` asked: an answer to it, or to any later command, was made after the sign."""
    expected: int
    """The host's next seq when it asked."""
    known_cmd: int
    """The last command seq the host then knew this boot had executed, -1 if none."""
    timeout: float
    deadline: float


@dataclass(frozen=True, slots=True)
class HostTiming:
    """Timers of the host end, in seconds (docs/protocol.md §ARQ)."""

    ack_delay: float = 0.02
    """An ACK goes out at most this long after an in-order sample..."""
    ack_every: int = 2
    """... and at once when this many are unacknowledged (at most half the window): with the
    rest of the window as margin, one lost ACK does not stall the device."""
    nack_holdoff: float = 0.1
    """A seq is NACKed again only after the holdoff: twice the smoothed time from a NACK to
    its resend arriving, within [nack_holdoff_min, nack_holdoff]; nack_holdoff until a resend
    has been timed. An ACK is repeated after it too when nothing arrives."""
    nack_holdoff_min: float = 0.02
    cmd_timeout: float = 0.3
    """First wait for a command's reply; doubled after each resend."""
    cmd_timeout_max: float = 2.0
    cmd_retries: int = 6
    """Resends before a command is reported failed ("timeout")."""


class HostLink:
    """The host end of a protocol v1 link.

    Until it has synchronised with a device (a `hello` at boot or in answer to the `hello` it
    sends at start) it delivers nothing: it does not know where the device's window starts.
    A boot hello of the current boot, or a frame that only a restart could explain, makes it
    ask the device with a `hello` whether it restarted keeping its boot number (R10).
    """

    def __init__(self, *, now: float, win: int = WINDOW, timing: HostTiming = HostTiming()) -> None:
        self.win = win
        self.timing = timing
        self._ack_after = min(timing.ack_every, max(1, win // 2))
        """Samples delivered that make an ACK due at once (else it waits `ack_delay`)."""
        self.stats = HostStats()
        self.synced = False
        self.boot: int | None = None
        self.hello: Hello | None = None
        self._splitter = LineSplitter()
        self._out = bytearray()
        self._expected = 0
        self._buffer: dict[int, Sample] = {}
        self._highest: int | None = None
        self._delivered_any = False
        self._unacked = 0
        self._ack_due: float | None = None
        self._reack_at: float | None = None
        """If nothing arrives until then, the last ACK is sent once more (it may have been lost
        while the device's window was full: then the device waits for it)."""
        self._nacked_at: dict[int, float] = {}
        self._nacked_twice: set[int] = set()
        self._repair_time: float | None = None
        """Smoothed NACK -> resend arrival time (seconds), from seqs NACKed once (Karn)."""
        self._gap_reported: set[int] = set()
        self._known_cmd = -1
        """The last command seq this boot is known to have executed (a reply or a hello said
        so), -1 if none: a device that restarted has forgotten it."""
        self._check: _RestartCheck | None = None
        self._queue: deque[_Outgoing] = deque()
        self._current: _Outgoing | None = None
        self._next_cmd_seq = 0
        self._handles = itertools.count(1)
        self._queue_sync_hello(now, front=False)
        self._tick(now, [])

    # --- public API ------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[HostEvent]:
        """Take received bytes; return what happened, timers up to `now` included."""
        events: list[HostEvent] = []
        self.stats.bytes_in += len(data)
        for line in self._splitter.feed(data, now):
            if isinstance(line, Broken):
                self._corrupt(FrameError(line.kind, "line dropped"), b"", now, events)
            elif line[0] not in b"\r\n" or line.strip(b"\r\n"):
                self._on_line(line, now, events)  # lines of only CR and LF are not frames
        self._tick(now, events)
        return events

    def poll(self, now: float) -> list[HostEvent]:
        """Run the timers due at `now` (call it at `next_deadline()`)."""
        events: list[HostEvent] = []
        self._tick(now, events)
        return events

    def send_command(
        self, name: str, args: Mapping[str, Any] | None = None, *, now: float, check: bool = True
    ) -> int:
        """Queue a command; returns the handle its CommandDone/CommandFailed will carry.
        With check=True a command the device would refuse raises ValueError here."""
        args = dict(args or {})
        if check and (err := commands.check(name, args)) is not None:
            raise ValueError(f"{name} {args}: the device would refuse it ({err})")
        handle = next(self._handles)
        self._queue.append(_Outgoing(handle, name, args, reported=True))
        self._tick(now, [])
        return handle

    def data_to_send(self) -> bytes:
        """Bytes to write to the device; each call returns what accumulated since the last."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> float | None:
        """When `poll` must next be called, or None if nothing is timed."""
        cmd_deadline = self._current.deadline if self._current is not None else None
        renack = self._renack_at() if self._buffer else None
        check = self._check.deadline if self._check is not None else None
        times = [
            t for t in (self._ack_due, self._reack_at, cmd_deadline, renack, check) if t is not None
        ]
        return min(times) if times else None

    def _renack_at(self) -> float:
        """When a missing seq of an open gap is next due for a NACK (R8)."""
        at = self._nacked_at
        return min((at.get(s, -math.inf) for s in self._missing()), default=math.inf) + self.holdoff

    @property
    def holdoff(self) -> float:
        """How long a NACKed seq waits before it is NACKed again (R8)."""
        t = self.timing
        if self._repair_time is None:
            return t.nack_holdoff
        return min(max(2 * self._repair_time, t.nack_holdoff_min), t.nack_holdoff)

    @property
    def gap_open(self) -> bool:
        """Samples are held beyond a missing one."""
        return bool(self._buffer)

    @property
    def missing_count(self) -> int:
        """Seqs of this boot seen skipped and not yet arrived."""
        return len(self._missing())

    @property
    def commands_pending(self) -> int:
        return len(self._queue) + (self._current is not None and self._current.reported)

    # --- receiving -------------------------------------------------------------------------

    def _corrupt(self, exc: FrameError, line: bytes, now: float, events: list[HostEvent]) -> None:
        self.stats.corrupt += 1
        by_kind = self.stats.corrupt_by_kind
        by_kind[exc.kind] = by_kind.get(exc.kind, 0) + 1
        events.append(CorruptFrame(exc.kind, line, now))

    def _on_line(self, line: bytes, now: float, events: list[HostEvent]) -> None:
        try:
            msg = decode(line, Direction.DEVICE_TO_HOST)
        except FrameError as exc:
            self._corrupt(exc, line, now, events)
            return
        if type(msg) is Sample:  # most lines: dispatched before the match's isinstance chain
            self.stats.frames_in += 1
            self._on_sample(msg, now, events)
            return
        self.stats.frames_in += not isinstance(msg, DeviceLog)
        match msg:
            case Hello():
                self._on_hello(msg, now, events)
            case Reply():
                self._on_reply(msg, now, events)
            case DeviceLog():
                self.stats.log_lines += 1
                events.append(LogLine(msg.text, now))

    def _on_sample(self, s: Sample, now: float, events: list[HostEvent]) -> None:
        self._reack_at = None  # the device is sending: its window is not stuck on our ACK
        if (
            s.seq == self._expected
            and s.boot == self.boot
            and self.synced
            and not (self._buffer or self._nacked_at or self._gap_reported)
        ):
            # The common case: the next seq of this boot, nothing missing, nothing asked for.
            events.append(SampleReceived(s, now))
            self._highest = s.seq
            self._expected = seqnum.add(s.seq, 1)
            self._delivered(1, now)
            return
        if not self.synced or self.boot is None:
            return  # not acknowledged, so the device sends it again once we are in sync
        if s.boot != self.boot:
            if not seqnum.boot_is_newer(s.boot, self.boot):
                self.stats.stale += 1
                self._suspect_restart(now)  # or a counter that went back (an erased EEPROM)
                return
            self._new_boot(s.boot, 0, now, events)
            self._queue_sync_hello(now, front=True)
        d = seqnum.diff(s.seq, self._expected)
        if d >= self.win:
            self.stats.out_of_window += 1
            return
        if d < 0 or s.seq in self._buffer:
            if d < -self.win:
                # Not a resend: the device resends only its window, which starts at most `win`
                # before the host's next seq. A late copy, or a restart that kept the number.
                self._suspect_restart(now)
            self.stats.duplicates += 1
            events.append(DuplicateDropped(s.boot, s.seq, now))
            if self._delivered_any:
                self._ack_due = now  # the device resent it: our ACK was likely lost
            if self._buffer:
                self._on_gap(now, events)
            return
        self._buffer[s.seq] = s
        if self._highest is None or seqnum.diff(s.seq, self._highest) > 0:
            self._highest = s.seq
        if (nacked := self._nacked_at.pop(s.seq, None)) is not None:
            if s.seq in self._nacked_twice:
                self._nacked_twice.discard(s.seq)  # which NACK it answers is unknown
            else:
                took = now - nacked
                rt = self._repair_time
                self._repair_time = took if rt is None else rt + (took - rt) / 8
            self.stats.retransmissions += 1
            events.append(RetransmissionSeen(s.boot, s.seq, now))
        self._gap_reported.discard(s.seq)
        self._deliver(now, events)
        if self._buffer:
            self._on_gap(now, events)

    def _deliver(self, now: float, events: list[HostEvent]) -> None:
        delivered = 0
        while (s := self._buffer.pop(self._expected, None)) is not None:
            events.append(SampleReceived(s, now))
            self._expected = seqnum.add(self._expected, 1)
            delivered += 1
        if delivered:
            self._delivered(delivered, now)

    def _delivered(self, delivered: int, now: float) -> None:
        self.stats.samples += delivered
        self._delivered_any = True
        self._unacked += delivered
        if self._unacked >= self._ack_after:
            self._ack_due = now
        elif self._ack_due is None:
            self._ack_due = now + self.timing.ack_delay

    def _missing(self) -> list[int]:
        if self._highest is None:
            return []
        span = seqnum.diff(self._highest, self._expected)
        seqs = (seqnum.add(self._expected, i) for i in range(span))
        return [s for s in seqs if s not in self._buffer]

    def _on_gap(self, now: float, events: list[HostEvent]) -> None:
        assert self.boot is not None
        missing = self._missing()
        new = tuple(s for s in missing if s not in self._gap_reported)
        if new:
            self._gap_reported.update(new)
            self.stats.gaps += 1
            events.append(GapSeen(self.boot, new, now))
        holdoff = self.holdoff
        due = [s for s in missing if now >= self._nacked_at.get(s, -math.inf) + holdoff]
        for s in due:
            if s in self._nacked_at:
                self._nacked_twice.add(s)
            self._nacked_at[s] = now
        for i in range(0, len(due), MAX_NACK_SEQS):
            self._out += encode(Nack(tuple(due[i : i + MAX_NACK_SEQS]), self.boot))
            self.stats.nacks_sent += 1

    def _new_boot(
        self,
        boot: int,
        start_seq: int,
        now: float,
        events: list[HostEvent],
        *,
        counter_advanced: bool = True,
    ) -> None:
        """The device rebooted: deliver what is buffered of the old boot, count the rest lost."""
        assert self.boot is not None
        lost = len(self._missing())
        for seq in sorted(self._buffer, key=lambda x: seqnum.diff(x, self._expected)):
            events.append(SampleReceived(self._buffer[seq], now))
            self.stats.samples += 1
        self.stats.resets += 1
        self.stats.lost += lost
        events.append(DeviceReset(self.boot, boot, lost, now, counter_advanced))
        self.boot = boot
        self._known_cmd = -1
        self._check = None
        self._expected = start_seq
        self._buffer.clear()
        self._highest = None
        self._delivered_any = False
        self._unacked = 0
        self._ack_due = None
        self._reack_at = None
        self._nacked_at.clear()
        self._nacked_twice.clear()
        self._gap_reported.clear()
        cur = self._current
        if cur is not None and cur.name != "hello":
            self._finish(CommandFailed(cur.handle, self._sent(cur), "reset", now), events)

    def _on_hello(self, h: Hello, now: float, events: list[HostEvent]) -> None:
        events.append(DeviceHello(h, now))
        check = self._check
        if not self.synced or self.boot is None:
            self.synced = True
            self.boot = h.boot
            self._expected = h.seq
            self._known_cmd = h.last_cmd
        elif check is not None and h.ack is not None and seqnum.diff(h.ack, check.hello.seq) >= 0:
            # The answer to a `hello` sent after the sign: the device's state since then.
            self._check = None
            if h.boot != self.boot and seqnum.boot_is_newer(h.boot, self.boot):
                self._new_boot(h.boot, h.seq, now, events)
            elif h.boot != self.boot or self._restarted(h, check):
                self._new_boot(h.boot, h.seq, now, events, counter_advanced=False)
            self._known_cmd = h.last_cmd
        elif h.boot != self.boot:
            if not seqnum.boot_is_newer(h.boot, self.boot):
                self.stats.stale += 1
                self._suspect_restart(now)  # or a counter that went back (an erased EEPROM)
                return
            self._new_boot(h.boot, h.seq, now, events)
            self._known_cmd = h.last_cmd
        elif h.ack is None:
            # The boot hello of the current boot again: a copy (the relay duplicates and
            # reorders frames), or a restart that kept the boot number.
            self._suspect_restart(now)
        self.hello = h
        if h.last_cmd >= 0 and seqnum.diff(self._next_cmd_seq, h.last_cmd) <= 0:
            self._next_cmd_seq = seqnum.add(h.last_cmd, 1)
        self._queue = deque(x for x in self._queue if x.reported or x.name != "hello")
        cur = self._current
        is_answer = cur is not None and cur.command is not None and h.ack == cur.command.seq
        if cur is not None and cur.name == "hello" and (is_answer or not cur.reported):
            assert cur.command is not None  # a hello in flight has been sent
            self._finish(CommandDone(cur.handle, cur.command, cur.sent_at, now), events)

    def _restarted(self, h: Hello, check: _RestartCheck) -> bool:
        """Whether a device of the same boot number, answering a `hello` sent when the host
        expected `check.expected`, shows it restarted. A device that did not restart cannot
        have its window start more than `win` before that seq (it had sent the seq before it,
        and the start only moves forward), nor have forgotten a command it executed (its last
        command seq only moves forward)."""
        behind = seqnum.diff(h.seq, check.expected) < -h.win
        known = check.known_cmd
        forgot = known >= 0 and (h.last_cmd < 0 or seqnum.diff(h.last_cmd, known) < 0)
        return behind or forgot

    def _suspect_restart(self, now: float) -> None:
        """Ask the device for its state now (R10), unless a question is open."""
        if self._check is not None or self.boot is None:
            return
        hello = Command("hello", self._next_cmd_seq)
        self._next_cmd_seq = seqnum.add(self._next_cmd_seq, 1)
        timeout = self.timing.cmd_timeout
        self._check = _RestartCheck(hello, self._expected, self._known_cmd, timeout, now + timeout)
        self._out += encode(hello)

    def _on_reply(self, r: Reply, now: float, events: list[HostEvent]) -> None:
        cur = self._current
        if cur is None or cur.command is None:
            return
        if r.seq == -1:  # the device could not read a line: maybe our command
            self._transmit(cur, resend=True)
            return
        if cur.name == "hello" or r.seq != cur.command.seq:
            return  # a late answer to an earlier attempt or command
        if r.err not in (commands.ERR_BOOT, commands.ERR_STALE):
            self._known_cmd = r.seq  # executed, or refused when executed: the device remembers
        if r.ok:
            self._finish(CommandDone(cur.handle, cur.command, cur.sent_at, now), events)
        else:
            reason = "reset" if r.err == commands.ERR_BOOT else str(r.err)
            self._finish(CommandFailed(cur.handle, cur.command, reason, now), events)

    # --- sending ---------------------------------------------------------------------------

    def _queue_sync_hello(self, now: float, *, front: bool) -> None:
        if any(x.name == "hello" and not x.reported for x in (self._current, *self._queue) if x):
            return
        item = _Outgoing(next(self._handles), "hello", {}, reported=False)
        if front:
            self._queue.appendleft(item)
        else:
            self._queue.append(item)

    def _sent(self, item: _Outgoing) -> Command:
        assert item.command is not None
        return item.command

    def _transmit(self, item: _Outgoing, *, resend: bool) -> None:
        assert item.command is not None
        self._out += encode(item.command)
        if resend:
            self.stats.command_resends += 1
        if item.reported and not resend:
            self.stats.commands_sent += 1

    def _start(self, item: _Outgoing, now: float) -> None:
        boot = None if item.name == "hello" else self.boot
        item.command = Command(item.name, self._next_cmd_seq, item.args, boot)
        self._next_cmd_seq = seqnum.add(self._next_cmd_seq, 1)
        item.sent_at = now
        item.attempts = 1
        item.timeout = self.timing.cmd_timeout
        item.deadline = now + item.timeout
        self._current = item
        self._transmit(item, resend=False)

    def _finish(self, outcome: CommandDone | CommandFailed, events: list[HostEvent]) -> None:
        cur = self._current
        assert cur is not None
        self._current = None
        if not cur.reported:
            return
        if isinstance(outcome, CommandDone):
            self.stats.commands_done += 1
        else:
            self.stats.commands_failed += 1
        events.append(outcome)

    def _tick(self, now: float, events: list[HostEvent]) -> None:
        check = self._check
        if check is not None and now >= check.deadline:
            # Asked until answered, as the first sync: delivery may wait on the answer.
            check.timeout = min(check.timeout * 2, self.timing.cmd_timeout_max)
            check.deadline = now + check.timeout
            self._out += encode(check.hello)
            self.stats.command_resends += 1
        if self._ack_due is not None and now >= self._ack_due and self.boot is not None:
            self._out += encode(Ack(seqnum.add(self._expected, -1), self.boot))
            self.stats.acks_sent += 1
            self._unacked = 0
            self._ack_due = None
            self._reack_at = now + self.holdoff
        elif self._reack_at is not None and now >= self._reack_at and self.boot is not None:
            self._out += encode(Ack(seqnum.add(self._expected, -1), self.boot))
            self.stats.acks_sent += 1
            self._reack_at = None
        if self._buffer and self.boot is not None and now >= self._renack_at():
            self._on_gap(now, events)  # a stalled gap: its NACK or the resend was lost
        cur = self._current
        if cur is not None and cur.deadline is not None and now >= cur.deadline:
            unlimited = not cur.reported and not self.synced
            if cur.attempts > self.timing.cmd_retries and not unlimited:
                self._finish(CommandFailed(cur.handle, self._sent(cur), "timeout", now), events)
            else:
                cur.attempts += 1
                cur.timeout = min(cur.timeout * 2, self.timing.cmd_timeout_max)
                cur.deadline = now + cur.timeout
                self._transmit(cur, resend=True)
        while self._current is None and self._queue:
            if not self.synced and self._queue[0].reported:
                break  # user commands wait until we know the device
            self._start(self._queue.popleft(), now)
