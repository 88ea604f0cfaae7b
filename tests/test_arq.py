"""One test per ARQ rule of docs/protocol.md (§ARQ rules, numbered the same)."""

from __future__ import annotations

import pytest

from harness.faults import FaultConfig
from harness.link import (
    Ack,
    Command,
    CommandDone,
    CommandFailed,
    DeviceHello,
    DeviceLink,
    DeviceReset,
    DeviceTiming,
    DuplicateDropped,
    GapSeen,
    Hello,
    HostLink,
    Nack,
    Readings,
    Reply,
    Sample,
    SampleReceived,
    Settings,
)
from harness.link.messages import Direction, Message, decode, encode
from tests.linksim import LinkSim

ONE = Readings.one(5.0, 0.25, 1.25)


def frames(data: bytes, direction: Direction) -> list[Message]:
    return [decode(line, direction) for line in data.splitlines(keepends=True)]


def sent_samples(dev: DeviceLink) -> list[int]:
    return [
        m.seq for m in frames(dev.data_to_send(), Direction.DEVICE_TO_HOST) if isinstance(m, Sample)
    ]


def run_device(dev: DeviceLink, start: float, end: float, step: float = 0.01) -> list[int]:
    """Readings every `step` seconds from start to end; returns the seqs sent."""
    seqs: list[int] = []
    t = start
    while t <= end + 1e-9:
        dev.add_readings(t, ONE)
        seqs += sent_samples(dev)
        t = round(t + step, 6)
    return seqs


def ack(dev: DeviceLink, seq: int, now: float, boot: int = 1) -> None:
    dev.feed(encode(Ack(seq, boot)), now)


def sample(seq: int, boot: int = 1, ts: int | None = None) -> bytes:
    ts = (seq + 1) * 100 if ts is None else ts
    return encode(Sample(seq, boot, ts, 100, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 10, "ok"))


def synced_host(boot: int = 1, seq: int = 0, last_cmd: int = -1) -> HostLink:
    host = HostLink(now=0.0)
    host.feed(encode(Hello(boot=boot, seq=seq, last_cmd=last_cmd, interval=100, win=8)), 0.0)
    host.data_to_send()
    return host


def host_frames(host: HostLink) -> list[Message]:
    return frames(host.data_to_send(), Direction.HOST_TO_DEVICE)


# --- device: telemetry ---------------------------------------------------------------------


def test_r1_device_sends_at_most_a_window_unacknowledged() -> None:
    dev = DeviceLink(now=0.0, boot=1, settings=Settings(interval_ms=100))
    dev.data_to_send()
    seqs = run_device(dev, 0.01, 2.0)
    assert sorted(set(seqs)) == list(range(8))  # repeats are timeout resends
    assert dev.window == tuple(range(8))


def test_r2_full_window_folds_readings_into_the_pending_sample() -> None:
    dev = DeviceLink(now=0.0, boot=1, settings=Settings(interval_ms=100))
    dev.data_to_send()
    run_device(dev, 0.01, 2.0)  # window full at 0.8 s; 0.81..2.0 folds
    events = dev.feed(encode(Ack(7, 1)), 2.0)
    (eighth,) = [m for m in frames(dev.data_to_send(), Direction.DEVICE_TO_HOST)]
    assert isinstance(eighth, Sample)
    assert (eighth.seq, eighth.ts, eighth.dt) == (8, 2000, 1200)
    assert eighth.n == 120  # every reading from 0.81 s to 2.00 s, none lost
    assert events[-1].sample == eighth


def test_r3_cumulative_ack_releases_up_to_n_and_ignores_impossible_acks() -> None:
    dev = DeviceLink(now=0.0, boot=1, settings=Settings(interval_ms=100))
    run_device(dev, 0.01, 0.5)  # seqs 0..4 sent
    ack(dev, 9, 0.5)  # never sent
    ack(dev, 2, 0.5, boot=0)  # another boot
    assert dev.window == (0, 1, 2, 3, 4)
    ack(dev, 2, 0.5)
    assert dev.window == (3, 4)
    ack(dev, 1, 0.5)  # old
    assert dev.window == (3, 4)


def test_r4_nack_resends_those_seqs_at_once() -> None:
    dev = DeviceLink(now=0.0, boot=1, settings=Settings(interval_ms=100))
    run_device(dev, 0.01, 0.5)
    dev.data_to_send()
    dev.feed(encode(Nack((1, 3, 42), 1)), 0.5)
    assert sent_samples(dev) == [1, 3]


def test_r4_a_device_sending_line_by_line_puts_a_resend_before_new_samples() -> None:
    """A UART that starts a line only when the one before has gone (the firmware, the mock on
    a slow line): a NACK answered now overtakes samples that have not started yet."""
    dev = DeviceLink(now=0.0, boot=1, settings=Settings(interval_ms=100))
    dev.data_to_send()  # the hello
    for t in (0.1, 0.2, 0.3):
        dev.add_readings(t, ONE)
    first = decode(dev.next_line(), Direction.DEVICE_TO_HOST)
    dev.feed(encode(Nack((0,), 1)), 0.31)  # sample 0 was lost on the way
    lines = iter(dev.next_line, b"")
    assert [decode(x, Direction.DEVICE_TO_HOST).seq for x in lines] == [0, 1, 2]  # type: ignore[union-attr]
    assert isinstance(first, Sample) and first.seq == 0 and not dev.has_output


def test_r5_timeout_resends_the_window_with_backoff() -> None:
    dev = DeviceLink(now=0.0, boot=1, timing=DeviceTiming(rto=0.3, rto_max=2.0))
    dev.data_to_send()
    dev.add_readings(1.0, ONE)  # seq 0 closes at 1.0
    assert sent_samples(dev) == [0]
    resends = []
    t = 1.0
    while t < 9.0:
        deadline = dev.next_deadline()
        assert deadline is not None
        t = deadline
        dev.poll(t)
        if sent_samples(dev) == [0]:
            resends.append(round(t, 3))
    assert resends[:5] == [1.3, 1.9, 3.1, 5.1, 7.1]  # 0.3, 0.6, 1.2, then capped at 2.0
    ack(dev, 0, 7.2)
    dev.add_readings(8.0, ONE)
    dev.poll(8.0)
    assert dev.next_deadline() is not None and abs(dev.next_deadline() - 8.3) < 1e-9


def test_r6_boot_starts_at_seq_zero_with_a_hello() -> None:
    dev = DeviceLink(now=5.0, boot=17)
    (hello,) = frames(dev.data_to_send(), Direction.DEVICE_TO_HOST)
    assert hello == Hello(boot=17, seq=0, last_cmd=-1, interval=1000, win=8)
    dev.add_readings(6.0, ONE)
    (first,) = frames(dev.data_to_send(), Direction.DEVICE_TO_HOST)
    assert isinstance(first, Sample)
    assert (first.seq, first.boot, first.ts, first.dt) == (0, 17, 1000, 1000)


# --- host: telemetry -----------------------------------------------------------------------


def test_r7_ack_cadence() -> None:
    host = synced_host()
    host.feed(sample(0), 1.0)
    assert host_frames(host) == []
    assert host.next_deadline() == 1.0 + 0.02
    host.poll(1.02)
    assert host_frames(host) == [Ack(0, 1)]
    for seq in (1, 2):  # a quarter window unacknowledged: at once
        host.feed(sample(seq), 2.0)
    assert host_frames(host) == [Ack(2, 1)]
    host.feed(sample(1), 2.01)  # a resend of a delivered one: our ACK was lost
    assert host_frames(host) == [Ack(2, 1)]
    # Nothing arrives after an ACK: it is sent once more after the holdoff (the device may be
    # waiting for it with a full window), then no more.
    assert host.next_deadline() == pytest.approx(2.11)
    host.poll(2.11)
    assert host_frames(host) == [Ack(2, 1)]
    assert host.next_deadline() is None


def test_r8_gap_is_nacked_at_once_four_at_most_and_again_after_the_holdoff() -> None:
    host = synced_host()
    events = host.feed(sample(6), 1.0)
    assert [e.seqs for e in events if isinstance(e, GapSeen)] == [(0, 1, 2, 3, 4, 5)]
    assert host_frames(host) == [Nack((0, 1, 2, 3), 1), Nack((4, 5), 1)]
    host.feed(sample(7), 1.05)  # all are within their holdoff
    assert host_frames(host) == []
    # The gap stays open and nothing more arrives (the device's window is full): the NACKs
    # go again when the holdoff ends, not only when a later sample arrives.
    assert host.next_deadline() == pytest.approx(1.1)
    host.poll(1.1)
    assert host_frames(host) == [Nack((0, 1, 2, 3), 1), Nack((4, 5), 1)]
    host.feed(sample(4), 1.12)  # NACKed twice: its time is not measured
    assert host.holdoff == 0.1
    host.poll(1.21)
    assert host_frames(host) == [Nack((0, 1, 2, 3), 1), Nack((5,), 1)]


def test_r8_holdoff_follows_the_time_a_repair_takes() -> None:
    host = synced_host()
    assert host.holdoff == 0.1  # until a resend has been timed
    for k in range(40):  # a fast line: each NACKed seq comes back 5 ms later
        host.feed(sample(2 * k + 1), 1.0 + k)
        host.feed(sample(2 * k), 1.005 + k)
    assert host.holdoff == pytest.approx(0.02)  # twice 5 ms, but at least 20 ms
    host = synced_host()
    for k in range(40):  # a slow line: 80 ms
        host.feed(sample(2 * k + 1), 1.0 + k)
        host.feed(sample(2 * k), 1.08 + k)
    assert host.holdoff == pytest.approx(0.1)  # twice 80 ms, but at most 100 ms
    host = synced_host()
    for k in range(40):  # 30 ms
        host.feed(sample(2 * k + 1), 1.0 + k)
        host.feed(sample(2 * k), 1.03 + k)
    assert host.holdoff == pytest.approx(0.06)
    # Karn: a seq NACKed twice says nothing of the time (which NACK did it answer?)
    host.feed(sample(81), 100.0)
    host.poll(100.2)
    host.feed(sample(80), 100.21)
    assert host.holdoff == pytest.approx(0.06)


def test_r9_in_order_exactly_once_delivery() -> None:
    host = synced_host()
    got: list[int] = []
    dups = 0
    for seq in (2, 0, 2, 1, 1, 3, 0):
        for e in host.feed(sample(seq), 1.0):
            if isinstance(e, SampleReceived):
                got.append(e.sample.seq)
            dups += isinstance(e, DuplicateDropped)
    assert got == [0, 1, 2, 3]
    assert dups == 3


def test_r10_reset_flushes_old_boot_counts_loss_and_fails_outstanding_command() -> None:
    host = synced_host(boot=1)
    host.feed(sample(0) + sample(1) + sample(3) + sample(5), 1.0)
    handle = host.send_command("set_interval", {"value": 500}, now=1.0)
    events = host.feed(sample(0, boot=2), 2.0)
    delivered = [(e.sample.boot, e.sample.seq) for e in events if isinstance(e, SampleReceived)]
    assert delivered == [(1, 3), (1, 5), (2, 0)]
    (reset,) = [e for e in events if isinstance(e, DeviceReset)]
    assert (reset.old_boot, reset.new_boot, reset.lost) == (1, 2, 2)  # seqs 2 and 4
    (failed,) = [e for e in events if isinstance(e, CommandFailed)]
    assert (failed.handle, failed.reason) == (handle, "reset")
    assert [e for e in host.feed(sample(6, boot=1), 2.1) if isinstance(e, SampleReceived)] == []
    assert host.stats.stale == 1


def test_r11_seq_wraps_at_32_bits() -> None:
    sim = LinkSim(first_seq=0xFFFF_FFFC)
    sim.device.data_to_send()
    sim.host.feed(encode(Hello(boot=1, seq=0xFFFF_FFFC, last_cmd=-1, interval=100, win=8)), 0.0)
    trace = sim.run_until(2.0)
    seqs = [e.sample.seq for _, e in trace.delivered]
    assert seqs[:6] == [0xFFFF_FFFC, 0xFFFF_FFFD, 0xFFFF_FFFE, 0xFFFF_FFFF, 0, 1]
    assert len(seqs) == len(trace.closed)


def test_r12_host_delivers_nothing_before_sync_and_hello_resends_the_window() -> None:
    host = HostLink(now=0.0)
    (probe,) = host_frames(host)
    assert isinstance(probe, Command) and probe.name == "hello"
    assert [e for e in host.feed(sample(3), 0.1) if isinstance(e, SampleReceived)] == []
    dev = DeviceLink(now=0.0, boot=4, settings=Settings(interval_ms=100))
    dev.data_to_send()
    run_device(dev, 0.01, 0.3)  # seqs 0..2 sent and lost
    dev.feed(encode(probe), 0.35)
    events = host.feed(dev.data_to_send(), 0.36)
    assert isinstance(events[0], DeviceHello) and host.synced
    assert [e.sample.seq for e in events if isinstance(e, SampleReceived)] == [0, 1, 2]


# --- commands ------------------------------------------------------------------------------


def test_r13_commands_are_stop_and_wait() -> None:
    host = synced_host()
    host.send_command("ping", now=1.0)
    host.send_command("set_avg", {"value": 4}, now=1.0)
    (first,) = host_frames(host)
    assert isinstance(first, Command) and first.name == "ping"
    host.feed(encode(Reply(first.seq)), 1.1)
    (second,) = host_frames(host)
    assert isinstance(second, Command) and second.name == "set_avg"


def test_r14_command_resent_with_backoff_then_failed() -> None:
    host = synced_host()
    handle = host.send_command("ping", now=0.0)
    host.data_to_send()
    sends = []
    events = []
    while (deadline := host.next_deadline()) is not None:
        events += host.poll(deadline)
        if host_frames(host):
            sends.append(round(deadline, 3))
    assert sends == [0.3, 0.9, 2.1, 4.1, 6.1, 8.1]
    (failed,) = events
    assert isinstance(failed, CommandFailed)
    assert (failed.handle, failed.reason, failed.at) == (handle, "timeout", 10.1)


def test_r15_corrupt_command_is_nacked_and_resent_at_once() -> None:
    dev = DeviceLink(now=0.0, boot=1)
    dev.data_to_send()
    host = synced_host()
    host.send_command("set_avg", {"value": 8}, now=1.0)
    line = bytearray(host.data_to_send())
    line[10] ^= 0x01
    dev.feed(bytes(line), 1.01)
    reply = dev.data_to_send()
    assert decode(reply, Direction.DEVICE_TO_HOST) == Reply(-1, "bad_crc")
    host.feed(reply, 1.02)
    (resent,) = host_frames(host)
    assert isinstance(resent, Command) and resent.args == {"value": 8}
    assert dev.settings.avg == 1


def test_r16_duplicate_command_answered_from_cache_executed_once() -> None:
    dev = DeviceLink(now=0.0, boot=1)
    dev.data_to_send()
    line = encode(Command("set_interval", 5, {"value": 250}, boot=1))
    first = dev.feed(line, 1.0)
    reply1 = dev.data_to_send()
    second = dev.feed(line, 1.5)
    reply2 = dev.data_to_send()
    assert reply1 == reply2 == encode(Reply(5))
    assert len(first) == 1 and second == []


def test_r17_stale_command_is_refused_not_executed() -> None:
    dev = DeviceLink(now=0.0, boot=1)
    dev.feed(encode(Command("ping", 10, boot=1)), 1.0)
    dev.data_to_send()
    events = dev.feed(encode(Command("set_avg", 9, {"value": 2}, boot=1)), 1.1)
    assert events == []
    assert decode(dev.data_to_send(), Direction.DEVICE_TO_HOST) == Reply(9, "stale")
    assert dev.settings.avg == 1


def test_r18_command_for_another_boot_is_refused_and_reported_as_reset() -> None:
    dev = DeviceLink(now=0.0, boot=2)
    dev.data_to_send()
    host = synced_host(boot=1)
    handle = host.send_command("ping", now=1.0)
    dev.feed(host.data_to_send(), 1.0)
    events = host.feed(dev.data_to_send(), 1.01)
    assert [(e.handle, e.reason) for e in events if isinstance(e, CommandFailed)] == [
        (handle, "reset")
    ]


def test_r19_refused_command_fails_with_the_device_error_without_resending() -> None:
    host = synced_host()
    handle = host.send_command("set_interval", {"value": 5}, now=1.0, check=False)
    (cmd,) = host_frames(host)
    assert isinstance(cmd, Command)
    events = host.feed(encode(Reply(cmd.seq, "range")), 1.1)
    assert [(e.handle, e.reason) for e in events if isinstance(e, CommandFailed)] == [
        (handle, "range")
    ]
    assert host.next_deadline() is None


def test_r20_host_numbers_commands_after_the_devices_last() -> None:
    host = synced_host(last_cmd=41)
    host.send_command("ping", now=1.0)
    (cmd,) = host_frames(host)
    assert isinstance(cmd, Command) and cmd.seq == 42 and cmd.boot == 1


def test_command_done_reports_latency() -> None:
    sim = LinkSim(h2d=FaultConfig(delay=0.05), d2h=FaultConfig(delay=0.05))
    sim.at(1.0, lambda: sim.command("ping"))
    trace = sim.run_until(2.0)
    (done,) = trace.done.values()
    assert isinstance(done, CommandDone)
    assert abs((done.at - done.sent_at) - 0.1) < 1e-6
