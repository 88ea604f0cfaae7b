"""A device that restarts without its boot counter advancing (an erased EEPROM, a swapped board,
`harness mock` restarted): the host recognises the new boot, reports it and delivers again
(docs/protocol.md R10, "A restart the counter did not show"); a copy of the boot hello, or a
hello answering the host's own `hello`, is not taken for one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.faults import FaultConfig
from harness.link import (
    Command,
    CommandDone,
    CommandFailed,
    DeviceHello,
    DeviceLink,
    DeviceReset,
    Hello,
    HostEvent,
    HostLink,
    Reply,
    Sample,
    SampleReceived,
)
from harness.link.messages import Direction, Message, decode, encode
from harness.runner.bus import Published, RunEvent, SampleEvent
from harness.runner.context import RunOptions, tap
from harness.runner.run import run_scenario
from harness.scenario.load import parse
from harness.targets.mock import MockTarget
from tests.cpp_device import CppDevice
from tests.linksim import DeviceFactory, LinkSim


def sample(seq: int, boot: int = 1, ts: int | None = None) -> bytes:
    ts = (seq + 1) * 100 if ts is None else ts
    return encode(Sample(seq, boot, ts, 100, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 10, "ok"))


def boot_hello(boot: int = 1) -> bytes:
    return encode(Hello(boot=boot, seq=0, last_cmd=-1, interval=100, win=8))


def answer(probe: Command, boot: int = 1, seq: int = 0, last_cmd: int = -1) -> bytes:
    return encode(Hello(boot=boot, seq=seq, last_cmd=last_cmd, interval=100, win=8, ack=probe.seq))


def sent(host: HostLink) -> list[Message]:
    data = host.data_to_send()
    return [decode(line, Direction.HOST_TO_DEVICE) for line in data.splitlines(keepends=True)]


def hello_probe(host: HostLink) -> Command:
    """The `hello` command the host sent to learn the device's state now."""
    (probe,) = [m for m in sent(host) if isinstance(m, Command) and m.name == "hello"]
    return probe


def delivered(events: list[HostEvent]) -> list[tuple[int, int]]:
    return [(e.sample.boot, e.sample.seq) for e in events if isinstance(e, SampleReceived)]


def resets(events: list[HostEvent]) -> list[DeviceReset]:
    return [e for e in events if isinstance(e, DeviceReset)]


def running_host(samples: int, boot: int = 1) -> HostLink:
    """A host synced by a boot hello that has delivered and acknowledged seqs 0..samples-1."""
    host = HostLink(now=0.0)
    host.feed(boot_hello(boot), 0.0)
    (sync,) = [m for m in sent(host) if isinstance(m, Command)]
    host.feed(answer(sync, boot=boot), 0.01)
    for seq in range(samples):
        host.feed(sample(seq, boot), 0.1 * (seq + 1))
    host.poll(100.0)
    host.data_to_send()
    return host


# --- the host end, fed bytes ------------------------------------------------------------------


def test_a_restart_keeping_its_boot_number_is_a_new_boot_and_delivery_resumes() -> None:
    host = running_host(20)
    events = host.feed(boot_hello(), 10.0)  # the device restarted; its counter stayed at 1
    assert resets(events) == []
    probe = hello_probe(host)  # a copy of the boot hello would look the same: the host asks
    events = host.feed(answer(probe, seq=0), 10.05)
    (reset,) = resets(events)
    assert (reset.old_boot, reset.new_boot, reset.lost) == (1, 1, 0)
    assert reset.counter_advanced is False
    events = host.feed(sample(0, ts=100) + sample(1, ts=200), 10.1)
    assert delivered(events) == [(1, 0), (1, 1)]
    assert host.stats.resets == 1


def test_a_copy_of_the_boot_hello_is_not_a_restart() -> None:
    """The fault relay duplicates and reorders frames: the boot hello's copy can come after
    samples the device sent later. The device's answer shows it did not restart."""
    host = running_host(20)
    events = host.feed(boot_hello(), 2.0)
    probe = hello_probe(host)
    events += host.feed(answer(probe, seq=20), 2.05)  # its window starts where the host is
    events += host.feed(sample(20) + sample(21), 2.1)
    assert resets(events) == []
    assert delivered(events) == [(1, 20), (1, 21)]


def test_the_answer_to_the_hosts_own_hello_is_not_a_restart() -> None:
    """A device whose window holds nothing acknowledged answers `hello` with seq 0 and cmd -1,
    as its boot hello says; the `ack` field tells the answer apart."""
    host = HostLink(now=0.0)
    (sync,) = [m for m in sent(host) if isinstance(m, Command)]
    events = host.feed(answer(sync, seq=0), 0.1)
    handle = host.send_command("hello", now=1.0)
    (cmd,) = [m for m in sent(host) if isinstance(m, Command)]
    events += host.feed(answer(cmd, seq=0) + answer(cmd, seq=0), 1.1)  # and a duplicate
    events += host.feed(sample(0), 1.2)
    assert resets(events) == [] and delivered(events) == [(1, 0)]
    assert [e.handle for e in events if isinstance(e, CommandDone)] == [handle]
    assert sent(host) == []  # no probe: nothing suggested a restart


def test_a_boot_counter_that_went_back_is_a_new_boot() -> None:
    """An erased EEPROM: the firmware's counter starts again at 0. Frames of an older boot are
    stale as long as the device does not say, in answer to a `hello` sent now, that it is on
    that boot."""
    host = running_host(20, boot=5)
    events = host.feed(boot_hello(boot=0) + sample(0, boot=0), 10.0)
    assert delivered(events) == [] and host.stats.stale == 2
    probe = hello_probe(host)
    events = host.feed(answer(probe, boot=0), 10.05)
    (reset,) = resets(events)
    assert (reset.old_boot, reset.new_boot, reset.counter_advanced) == (5, 0, False)
    assert delivered(host.feed(sample(0, boot=0), 10.1)) == [(0, 0)]


def test_a_restart_whose_boot_hello_was_lost_is_found_by_its_samples() -> None:
    """Seqs far behind the window cannot be a resend of the device the host knows."""
    host = running_host(30)
    events = host.feed(sample(0) + sample(1), 10.0)  # the new boot's first samples
    assert delivered(events) == []
    probe = hello_probe(host)
    events = host.feed(answer(probe, seq=0) + sample(0) + sample(1), 10.05)
    assert len(resets(events)) == 1
    assert delivered(events) == [(1, 0), (1, 1)]


def test_a_restart_early_in_a_boot_is_found_by_the_command_it_forgot() -> None:
    """Three samples in, the window's seqs cannot tell a restart from a copy of the boot hello;
    a command the old boot executed can: the new boot's answer says it executed none."""
    host = running_host(3)
    host.send_command("ping", now=1.0)
    (ping,) = [m for m in sent(host) if isinstance(m, Command)]
    host.feed(encode(Reply(ping.seq)), 1.1)
    host.feed(boot_hello(), 2.0)
    probe = hello_probe(host)
    (reset,) = resets(host.feed(answer(probe, seq=0), 2.05))
    assert reset.counter_advanced is False


def test_a_command_outstanding_at_a_restart_fails_with_reset() -> None:
    host = running_host(20)
    handle = host.send_command("set_avg", {"value": 4}, now=9.0)
    host.data_to_send()
    host.feed(boot_hello(), 10.0)
    probe = hello_probe(host)
    events = host.feed(answer(probe), 10.05)
    assert [(e.handle, e.reason) for e in events if isinstance(e, CommandFailed)] == [
        (handle, "reset")
    ]


def test_copies_while_the_host_waits_change_nothing_and_a_lost_answer_is_asked_again() -> None:
    """Copies of the boot hello while the host waits for its answer change nothing, and the
    host asks again if the answer is lost."""
    host = running_host(20)
    host.feed(boot_hello(), 10.0)
    probe = hello_probe(host)
    host.feed(boot_hello() + boot_hello(), 10.01)
    assert sent(host) == []
    deadline = host.next_deadline()
    assert deadline is not None
    host.poll(deadline)
    assert hello_probe(host) == probe  # resent
    events = host.feed(answer(probe), deadline + 0.01)
    assert len(resets(events)) == 1
    assert [e for e in events if isinstance(e, DeviceHello)]


# --- both ends over faulty pipes ----------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    restart_at=st.floats(2.0, 5.0),
    interval_ms=st.sampled_from([20, 50, 100]),
    duplicate=st.floats(0.0, 0.3),
    reorder=st.floats(0.0, 0.3),
    drop=st.floats(0.0, 0.15),
)
def test_a_restart_keeping_its_number_over_a_faulty_link(
    seed: int, restart_at: float, interval_ms: int, duplicate: float, reorder: float, drop: float
) -> None:
    """Drop, duplicates and reordering both ways: exactly one reset is reported, and every
    sample the new boot closes arrives once, in order, unchanged."""
    faults = FaultConfig(drop=drop, duplicate=duplicate, reorder=reorder, reorder_gap=2)
    sim = LinkSim(seed=seed, d2h=faults, h2d=faults, interval_ms=interval_ms)
    marks: dict[str, int] = {}

    def restart() -> None:
        marks["closed"] = len(sim.trace.closed)
        sim.reboot(boot=1)

    sim.at(restart_at, restart)
    sim.at(8.0, lambda: sim.set_faults(FaultConfig(), FaultConfig()))
    tr = sim.run_until(12.0)
    (reset,) = [e for e in tr.host_events if isinstance(e, DeviceReset)]
    assert (reset.old_boot, reset.new_boot, reset.counter_advanced) == (1, 1, False)
    after = [
        e.sample
        for e in tr.host_events[tr.host_events.index(reset) :]
        if isinstance(e, SampleReceived)
    ]
    new_boot = [c.sample for c in tr.closed[marks["closed"] :]]
    assert after == new_boot[: len(after)]
    assert len(after) >= len(new_boot) - 1  # the last may still be on its way
    assert after[0].ts - after[0].dt == 0


@pytest.mark.parametrize("device", [DeviceLink, CppDevice], ids=["python", "firmware-core"])
def test_a_restart_keeping_its_number_with_either_device_core(device: DeviceFactory) -> None:
    """The host against each device core over a lossy link that duplicates and reorders: the
    old boot's samples up to the restart, then the new boot's from seq 0, each once."""
    faults = FaultConfig(drop=0.05, duplicate=0.1, reorder=0.1)
    sim = LinkSim(seed=5, d2h=faults, h2d=faults, interval_ms=100, device_factory=device)
    sim.at(3.0, lambda: sim.reboot(boot=1))
    sim.at(5.0, lambda: sim.set_faults(FaultConfig(), FaultConfig()))
    try:
        events = sim.run_until(9.0).host_events
    finally:
        getattr(sim.device, "close", lambda: None)()
    (reset,) = resets(events)
    cut = events.index(reset)
    old, new = delivered(events[:cut]), delivered(events[cut:])
    assert old == [(1, seq) for seq in range(len(old))] and len(old) >= 20
    assert new == [(1, seq) for seq in range(len(new))] and len(new) >= 55


# --- a run on the mock, through the fault relay, in virtual time --------------------------------

RESTART = """\
[scenario]
name = "restart keeping the boot number"
duration = "20s"
seed = 3
[link]
drop = 0.03
duplicate = 0.05
reorder = 0.05
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[step]]
at = "1s"
send = { cmd = "set_interval", value = 250 }
[[step]]
at = "8.1s"
reset = true
[[expect]]
resets = 1
"""


class KeepsItsBootNumber(MockTarget):
    """A mock whose boot counter does not advance on a reset, like a board with an erased
    EEPROM."""

    def reset(self) -> None:
        assert self.device.boot is not None
        self.device.next_boot = self.device.boot
        super().reset()


async def test_a_run_on_a_mock_restarting_with_its_boot_number(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sc = parse(RESTART, tmp_path / "restart.toml")
    published: list[Published] = []
    target = KeepsItsBootNumber(sc, 3)
    options = RunOptions(fast=True, out=io.StringIO())
    rec = (await run_scenario(sc, options, (tap(published.append),), target)).record
    assert rec.verdict == "pass", rec.expectations
    (reset,) = rec.device.resets
    assert (reset.old_boot, reset.new_boot, reset.counter_advanced) == (1, 1, False)
    assert 8.1 < reset.at < 9.0
    assert rec.link.resets == 1 and rec.link.duplicated == 0
    cut = next(i for i, p in enumerate(published) if isinstance(p, RunEvent) and p.kind == "reset")
    after = [p for p in published[cut:] if isinstance(p, SampleEvent)]
    # The new boot reports from 8.1 s to the end (and the drain), at the scenario's 250 ms once
    # the run has sent set_interval again.
    assert [s.sample.seq for s in after] == list(range(len(after))) and len(after) >= 10
    assert 8.1 <= after[0].start < 8.2 and 8.2 < after[0].end < 9.2  # its clock starts anew
    assert any(c.reapplied and c.name == "set_interval" for c in rec.commands)
    assert reset.time_lost is not None and 0 <= reset.time_lost < 0.3
