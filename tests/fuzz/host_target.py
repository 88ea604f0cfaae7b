"""The Python fuzz target's body: the decoder and HostLink fed arbitrary bytes at arbitrary times,
with what must hold checked on every call. tests/fuzz/fuzz_host.py runs it under atheris;
tests/test_fuzz_inputs.py replays the seeds and every input kept in tests/fuzz/regressions/.

An input is a 4-byte header and the byte stream. The header seeds the choices that are not
bytes: where the stream is cut into reads, how much time passes before each, when the host's
timers run and which commands it sends. When its first byte is odd, every line with a `*` gets
the right CRC for what stands before it, so that a mutated frame reaches the JSON, message and
ARQ checks instead of stopping at `bad_crc`. tests/fuzz/seeds.py writes inputs in this form.
"""

from __future__ import annotations

import random
from typing import Final

from harness.link import (
    Ack,
    Command,
    CommandDone,
    CommandFailed,
    CorruptFrame,
    DeviceHello,
    DeviceLog,
    DeviceReset,
    DuplicateDropped,
    FrameError,
    GapSeen,
    Hello,
    HostEvent,
    HostLink,
    HostTiming,
    LogLine,
    Nack,
    Reply,
    RetransmissionSeen,
    Sample,
    SampleReceived,
    decode,
    encode,
    seqnum,
)
from harness.link.fields import MAX_LINE
from harness.link.frame import ERROR_KINDS, crc16, unwrap
from harness.link.messages import Direction, Message

HEADER: Final = 4
CHUNKS: Final = (1, 2, 5, 16, 63, 64, 191, 192, 193, 1 << 20)
"""Read sizes: single bytes, a UART FIFO, around the maximum line, everything at once."""
STEPS: Final = (0.0, 0.0, 0.0001, 0.001, 0.02, 0.1, 0.3, 0.499, 0.501, 2.0, 10.0, 1e6)
"""Seconds between reads: none, the ACK delay, around LINE_IDLE and the timeouts, a day."""
COMMANDS: Final = (
    ("ping", {}),
    ("hello", {}),
    ("set_interval", {"value": 10}),
    ("set_threshold", {"uv": 4.5, "oc": 1.0}),
    ("set_avg", {"value": 128}),
)
SETTLE: Final = 12.0
"""Seconds the timers run after the stream, and COMMAND_TIME more for each command waiting: a
synced host ends every command by then (a command it is sending ends within 10.1 s)."""
COMMAND_TIME: Final = 10.2
"""A command's longest life: 6 resends, 10.1 s from the first send."""
POLLS_PER_SECOND: Final = 4 / HostTiming().nack_holdoff_min
"""The most deadlines a second can hold: the shortest timers (the NACK holdoff and the ACK
delay, 20 ms; an open gap is NACKed at every holdoff while the device is silent) with room
for the others to fall between. More would be a timer that runs away."""

HOST_EVENTS: Final = (
    SampleReceived,
    DeviceHello,
    DeviceReset,
    CommandDone,
    CommandFailed,
    CorruptFrame,
    GapSeen,
    RetransmissionSeen,
    DuplicateDropped,
    LogLine,
)


class Broken(AssertionError):
    """Something that must hold did not."""


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise Broken(what)


def check_decode(line: bytes) -> None:
    """Decoding raises only FrameError; what decodes encodes to a frame that decodes the same."""
    for direction in Direction:
        try:
            unwrap(line)
        except FrameError as exc:
            expect(exc.kind in ERROR_KINDS, f"unwrap: kind {exc.kind!r}")
        try:
            msg = decode(line, direction)
        except FrameError as exc:
            expect(exc.kind in ERROR_KINDS, f"decode: kind {exc.kind!r}")
            continue
        if isinstance(msg, DeviceLog):
            continue
        again = decode(encode(msg), direction)
        expect(same(msg, again), f"{msg!r} encodes to {again!r}")


def same(a: Message, b: Message) -> bool:
    """The same message, up to the number formats a sender uses (§3)."""
    match a:
        case Sample():
            return isinstance(b, Sample) and (a.seq, a.boot, a.ts, a.dt, a.n, a.status) == (
                b.seq,
                b.boot,
                b.ts,
                b.dt,
                b.n,
                b.status,
            )
        case Command():
            return isinstance(b, Command) and (a.name, a.seq, a.boot) == (b.name, b.seq, b.boot)
        case Hello() | Reply() | Ack() | Nack():
            return a == b
    return False


class HostChecker:
    """Drives a HostLink and checks every event it gives and every byte it sends."""

    def __init__(self, now: float) -> None:
        self.host = HostLink(now=now)
        self.now = now
        self.last: dict[int, int] = {}
        """Per boot, the seq last delivered since the boot (re)started."""
        self.delivered = 0
        self.corrupt = 0
        self.resets = 0
        self.handles: set[int] = set()
        self.sent()

    def feed(self, data: bytes, now: float) -> None:
        self.now = now
        self.events(self.host.feed(data, now))
        self.state()

    def poll(self, now: float) -> None:
        self.now = now
        self.events(self.host.poll(now))
        self.state()

    def command(self, name: str, args: dict[str, float]) -> None:
        self.handles.add(self.host.send_command(name, args, now=self.now))
        self.state()

    def events(self, events: list[HostEvent]) -> None:
        for e in events:
            expect(isinstance(e, HOST_EVENTS), f"event {e!r}")
            expect(e.at == self.now, f"{e!r} not at {self.now}")
            match e:
                case SampleReceived(sample=s):
                    # In seq order, once: each seq of a boot after the last one delivered.
                    last = self.last.get(s.boot)
                    expect(last is None or seqnum.diff(s.seq, last) > 0, f"{s} after {last}")
                    self.last[s.boot] = s.seq
                    self.delivered += 1
                case DeviceReset():
                    advanced = seqnum.boot_is_newer(e.new_boot, e.old_boot)
                    expect(e.counter_advanced == advanced, f"{e!r}")
                    expect(e.lost >= 0, f"{e!r}")
                    self.last.pop(e.new_boot, None)
                    self.resets += 1
                case CorruptFrame():
                    expect(e.kind in ERROR_KINDS, f"{e!r}")
                    self.corrupt += 1
                case CommandDone() | CommandFailed():
                    expect(e.handle in self.handles, f"{e!r}: no such command outstanding")
                    self.handles.discard(e.handle)
                    if isinstance(e, CommandFailed):
                        expect(isinstance(e.reason, str) and e.reason != "", f"{e!r}")
                case GapSeen():
                    expect(bool(e.seqs), f"{e!r}")

    def state(self) -> None:
        host, s = self.host, self.host.stats
        expect(host._splitter.pending <= MAX_LINE, "more than a line held")
        expect(s.samples == self.delivered, f"samples {s.samples} != {self.delivered} delivered")
        expect(s.corrupt == self.corrupt == sum(s.corrupt_by_kind.values()), "corrupt counts")
        expect(s.resets == self.resets, "reset count")
        expect(host.missing_count < host.win, "a gap wider than the window")
        deadline = host.next_deadline()
        expect(deadline is None or deadline > self.now, f"deadline {deadline} due at {self.now}")
        self.sent()

    def sent(self) -> None:
        """What the host writes is frames a device reads: ACKs, NACKs and commands."""
        data = self.host.data_to_send()
        expect(data == b"" or data.endswith(b"\n"), "an unfinished line sent")
        for line in data.splitlines(keepends=True):
            expect(len(line) <= MAX_LINE, f"{len(line)} bytes sent")
            msg = decode(line, Direction.HOST_TO_DEVICE)
            expect(isinstance(msg, Ack | Nack | Command), f"sent {msg!r}")

    def settle(self) -> None:
        """Run the timers for SETTLE seconds: each deadline lies after the call that set it,
        and every command ends."""
        span = SETTLE + COMMAND_TIME * self.host.commands_pending
        end = self.now + span
        polls = int(span * POLLS_PER_SECOND)
        for _ in range(polls):
            deadline = self.host.next_deadline()
            if deadline is None or deadline > end:
                break
            self.poll(deadline)
        else:
            raise Broken(f"more than {polls} deadlines in {span} s")
        if self.host.synced:  # before, commands wait to learn the device's boot
            expect(not self.handles and self.host.commands_pending == 0, "a command never ended")


def with_crcs(stream: bytes) -> bytes:
    """Each line that holds a `*`, framed again: its body, `*`, the body's CRC, LF."""
    lines = stream.split(b"\n")
    for i, line in enumerate(lines[:-1]):
        body, star, _ = line.partition(b"*")
        if star:
            lines[i] = b"%s*%04X" % (body, crc16(body))
    return b"\n".join(lines)


def check_host(data: bytes) -> None:
    """Feed the input's stream to the decoder and to a HostLink; raise Broken if anything that
    must hold does not (an exception of another kind is a bug as well)."""
    rng = random.Random(data[:HEADER])
    stream = data[HEADER:]
    if data[:1] and data[0] & 1:
        stream = with_crcs(stream)
    for line in stream.split(b"\n"):
        check_decode(line + b"\n")
    now = rng.choice((0.0, 1e9))
    checker = HostChecker(now)
    pos = 0
    while pos < len(stream):
        size = rng.choice(CHUNKS)
        now += rng.choice(STEPS)
        checker.feed(stream[pos : pos + size], now)
        pos += size
        roll = rng.random()
        if roll < 0.2 and (deadline := checker.host.next_deadline()) is not None:
            now = max(now, deadline)
            checker.poll(now)
        elif roll > 0.95:
            checker.command(*rng.choice(COMMANDS))
    checker.settle()
