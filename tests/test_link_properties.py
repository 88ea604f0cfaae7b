"""Properties of HostLink + DeviceLink over a random faulty channel (docs/protocol.md §Guarantees).

Each example runs a device and a host through drop, bit flips, duplicates, reordering, delay,
garbage, burst loss and whole-link outages for a while, then a clean link for RECOVERY_BOUND
and a few seconds more, and checks what a user relies on.
"""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.faults import FaultConfig, GilbertElliott
from harness.link import (
    CorruptFrame,
    DeviceLink,
    DeviceReset,
    DuplicateDropped,
    GapSeen,
    HostLink,
    Resent,
    RetransmissionSeen,
)
from harness.link.fields import MAX_LINE
from harness.link.frame import LINE_IDLE, Broken, LineSplitter
from tests.cpp_device import CppDevice
from tests.linksim import DeviceFactory, LinkSim, Trace

RECOVERY_BOUND = 3.5
"""Seconds after the faults stop by which everything produced is delivered and the link runs
clean: a frame held back for reordering comes out up to MAX_HOLD (0.5 s) late; if it is a
fragment it can spoil lines for LINE_IDLE (0.5 s); the device's next resend then comes within
its capped timeout (2 s); plus a round trip with the longest delay (0.15 s) and a margin."""
OBSERVE = 3.0

probability = st.floats(0.0, 0.25)
fault_configs = st.builds(
    FaultConfig,
    drop=probability,
    corrupt=st.floats(0.0, 0.2),
    duplicate=st.floats(0.0, 0.2),
    reorder=st.floats(0.0, 0.2),
    reorder_gap=st.integers(1, 3),
    delay=st.floats(0.0, 0.1),
    jitter=st.floats(0.0, 0.05),
    garbage=st.floats(0.0, 0.1),
    burst=st.none() | st.builds(GilbertElliott, p=st.floats(0, 0.1), r=st.floats(0.2, 0.9)),
)
command_choices = st.sampled_from(
    [
        ("ping", {}),
        ("set_threshold", {"uv": 4.5}),
        ("set_avg", {"value": 4}),
        ("set_interval", {"value": 60}),
        ("set_interval", {"value": 5}),  # refused: range
    ]
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    duration = draw(st.floats(1.0, 12.0))
    return {
        "seed": draw(st.integers(0, 2**32)),
        "interval_ms": draw(st.sampled_from([20, 50, 100, 250])),
        "d2h": draw(fault_configs),
        "h2d": draw(fault_configs),
        "duration": duration,
        "outages": draw(
            st.lists(st.tuples(st.floats(0, duration), st.floats(0.05, 3.0)), max_size=3)
        ),
        "commands": draw(st.lists(st.tuples(st.floats(0, duration), command_choices), max_size=6)),
    }


def run(sc: dict, device: DeviceFactory = DeviceLink) -> tuple[LinkSim, Trace]:
    sim = LinkSim(
        seed=sc["seed"],
        d2h=sc["d2h"],
        h2d=sc["h2d"],
        interval_ms=sc["interval_ms"],
        device_factory=device,
    )
    end_of_faults = sc["duration"]
    for start, length in sc["outages"]:
        length = min(length, end_of_faults - start)

        def outage(length: float = length) -> None:
            sim.up.start_outage(sim.t, length)
            sim.down.start_outage(sim.t, length)

        sim.at(start, outage)
    for t, (name, args) in sc["commands"]:
        sim.at(t, lambda name=name, args=args: sim.command(name, args, check=False))

    def faults_stop() -> None:
        sim.set_faults(FaultConfig(), FaultConfig())
        sim.up.stop_outage(sim.t)
        sim.down.stop_outage(sim.t)

    sim.at(end_of_faults, faults_stop)
    return sim, sim.run_until(end_of_faults + RECOVERY_BOUND + OBSERVE)


EXAMPLES = int(os.environ.get("LINK_EXAMPLES", "60"))
"""Examples per run; LINK_EXAMPLES=3000 searches deeper (about 4 minutes)."""
CPP_EXAMPLES = max(1, EXAMPLES // 2)
"""The C++ core runs in a host program, in lockstep over a pipe: about 0.2 s an example."""


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_faulty_link_keeps_every_guarantee(sc: dict) -> None:
    sim, tr = run(sc)
    check_guarantees(sc, sim, tr)


@settings(
    max_examples=CPP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_faulty_link_keeps_every_guarantee_with_the_firmware_core(sc: dict) -> None:
    """The same, with the firmware's C++ device core (firmware/lib/powerlink) as the device."""
    sim, tr = run(sc, CppDevice)
    try:
        check_guarantees(sc, sim, tr)
    finally:
        sim.device.close()


def check_guarantees(sc: dict, sim: LinkSim, tr: Trace) -> None:
    recovered_by = sc["duration"] + RECOVERY_BOUND
    end = sim.t
    closed = [c.sample for c in tr.closed]
    delivered = [e.sample for _, e in tr.delivered]

    # Every sample reaches the host exactly once, in order, unchanged.
    assert delivered == closed[: len(delivered)]

    # The device never restarts here: a copy of its boot hello, a late frame or a hello
    # answering the host is never taken for a restart.
    assert [e for e in tr.host_events if isinstance(e, DeviceReset)] == []

    # By the bound, everything produced during the faults has arrived; afterwards samples
    # arrive the moment they are closed (the clean link has no delay).
    arrival = {e.sample.seq: t for t, e in tr.delivered}
    for c in tr.closed:
        if c.at <= sc["duration"]:
            assert arrival[c.sample.seq] <= recovered_by, c
        elif c.at <= end - 0.1:
            assert arrival[c.sample.seq] <= max(c.at, recovered_by) + 1e-9, c

    # No hole in device time: each sample starts where the previous one ended, and the
    # readings they count are all the readings taken.
    assert delivered, "nothing delivered"
    assert delivered[0].ts - delivered[0].dt == 0
    for prev, cur in itertools.pairwise(delivered):
        assert cur.ts - cur.dt == prev.ts
    taken = sum(n for index, n in tr.readings if index < len(delivered))
    assert sum(s.n for s in delivered) == taken

    # Commands: each is done or failed; done means executed exactly once with its arguments;
    # nothing is ever executed twice; refusals are reported with the device's reason.
    executed_seqs = [e.command.seq for e in tr.executed]
    assert len(executed_seqs) == len(set(executed_seqs))
    by_seq = {e.command.seq: e for e in tr.executed}
    assert set(tr.done) | set(tr.failed) == set(tr.sent)
    assert not set(tr.done) & set(tr.failed)
    for handle, done in tr.done.items():
        ex = by_seq[done.command.seq]
        assert (ex.command.name, dict(ex.command.args)) == tr.sent[handle]
        assert ex.reply.ok
    for handle, failed in tr.failed.items():
        if failed.reason == "range":
            assert tr.sent[handle] == ("set_interval", {"value": 5})
        else:
            assert failed.reason == "timeout"
    for ex in tr.executed:
        assert any((ex.command.name, dict(ex.command.args)) == sent for sent in tr.sent.values())

    # After the bound the link runs clean.
    trouble = (GapSeen, RetransmissionSeen, DuplicateDropped, CorruptFrame, Resent)
    late = [
        e
        for e in (*tr.host_events, *tr.device_events)
        if isinstance(e, trouble) and e.at > recovered_by
    ]
    assert late == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=400), max_size=20))
def test_arbitrary_bytes_are_counted_corrupt_never_raise(chunks: list[bytes]) -> None:
    host = HostLink(now=0.0)
    device = DeviceLink(now=0.0)
    stream = b"".join(chunks) + b"\n"
    for i, chunk in enumerate([*chunks, b"\n"]):
        host.feed(chunk, i * 0.001)
        device.feed(chunk, i * 0.001)
    lines = [
        x for x in LineSplitter().feed(stream, 0.0) if isinstance(x, Broken) or x.strip(b"\r\n")
    ]
    s = host.stats
    assert s.corrupt + s.frames_in + s.log_lines == len(lines)
    assert device.corrupt <= len(lines)
    assert host._splitter.pending == 0


def test_a_line_of_carriage_returns_is_empty() -> None:
    """docs/protocol.md §1: lines of nothing but CR and LF are ignored, however many CRs."""
    host = HostLink(now=0.0)
    assert host.feed(b"\r\r\n", 0.0) == []
    assert host.feed(b"\r" * (MAX_LINE - 1) + b"\n\n\r\n", 0.1) == []
    assert host.stats.corrupt == 0


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.integers(0, MAX_LINE - 1), max_size=12),
    tail=st.integers(0, MAX_LINE - 1),
    cuts=st.lists(st.integers(0, 3000), max_size=8),
    steps=st.lists(st.floats(0.0, LINE_IDLE), min_size=9, max_size=9),
)
def test_only_cr_and_lf_yield_no_event(
    lines: list[int], tail: int, cuts: list[int], steps: list[float]
) -> None:
    """Any stream of CR and LF alone, in lines within the maximum, cut anywhere and fed with
    pauses shorter than LINE_IDLE: no event at either end, nothing counted corrupt."""
    stream = b"".join(b"\r" * n + b"\n" for n in lines) + b"\r" * tail
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    host, device = HostLink(now=0.0), DeviceLink(now=0.0)
    t = 0.0
    for (a, b), step in zip(itertools.pairwise(bounds), steps, strict=False):
        t += step
        assert host.feed(stream[a:b], t) == []
        assert device.feed(stream[a:b], t) == []
    assert host.stats.corrupt == 0 and host.stats.frames_in == 0 and device.corrupt == 0


def test_huge_line_costs_bounded_memory_and_counts_once() -> None:
    host = HostLink(now=0.0)
    for _ in range(1000):
        host.feed(b"\x00\xff" * 5000, 0.0)
        assert host._splitter.pending <= 192
    host.feed(b"\n", 0.0)
    assert host.stats.corrupt_by_kind == {"too_long": 1}


@pytest.mark.parametrize("device", [DeviceLink, CppDevice], ids=["python", "firmware-core"])
def test_recovery_bound_is_tight_when_the_outage_ends_just_after_a_resend(
    device: DeviceFactory,
) -> None:
    """The bound is not slack: the device's resends during an outage back off to every 2 s
    (1.3, 1.9, 3.1, 5.1, 7.1, 9.1 s...); an outage ending at 9.15 s waits for the 11.1 s one."""
    sim = LinkSim(interval_ms=100, device_factory=device)
    sim.at(1.0, lambda: (sim.up.start_outage(1.0, 8.15), sim.down.start_outage(1.0, 8.15)))
    tr = sim.run_until(9.15 + RECOVERY_BOUND + 1.0)
    last_backlog = max(t for t, e in tr.delivered if e.sample.ts <= 9150)
    assert 9.15 + 1.9 < last_backlog <= 9.15 + RECOVERY_BOUND
    assert [e.sample for _, e in tr.delivered] == [c.sample for c in tr.closed]
