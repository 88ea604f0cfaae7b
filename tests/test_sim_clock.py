"""The sim's virtual clock (harness/targets/simclock.py) against a fake runner: a shared page
the test writes cycle counts into and the runner's end of the lease socket, as
`powerhil-sim --fast` has them (firmware/sim/README.md). No simulator runs here."""

from __future__ import annotations

import mmap
import os
import socket
from collections.abc import Iterator

import pytest
import trio

from harness.targets.simclock import LEAD, LEASE, MCU_HZ, PAGE, SimClock


class FakeRunner:
    """The runner's side: its page (cycles), its socket, the leases it was granted."""

    def __init__(self) -> None:
        self.host, self.sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = os.memfd_create("fake-sim-clock")
        os.ftruncate(fd, PAGE)
        self.page = mmap.mmap(fd, PAGE)
        self.cycles = memoryview(self.page).cast("Q")
        socket.send_fds(self.sock, [LEASE.pack(0)], [fd])
        os.close(fd)
        self.sock.setblocking(False)

    def leases(self) -> list[int]:
        got = []
        while True:
            try:
                got.append(LEASE.unpack(self.sock.recv(64))[0])
            except BlockingIOError:
                return got

    def run_to(self, cycles: int) -> None:
        self.cycles[0] = cycles

    def close(self) -> None:
        self.cycles.release()
        self.page.close()
        self.sock.close()


@pytest.fixture
def fake() -> Iterator[FakeRunner]:
    runner = FakeRunner()
    yield runner
    runner.close()


def attached(fake: FakeRunner) -> SimClock:
    clock = SimClock()
    clock.start_clock()
    clock.attach(fake.host)
    return clock


def test_before_the_runner_is_attached_the_clock_is_the_wall_clock() -> None:
    clock = SimClock()
    clock.start_clock()
    t0 = clock.current_time()
    assert t0 >= 0.0
    # trio waits the real time to a deadline: its start-up timeouts keep their meaning
    assert clock.deadline_to_sleep_time(t0 + 10.0) == pytest.approx(10.0, abs=1.0)
    assert clock.deadline_to_sleep_time(t0 - 1.0) == 0.0
    assert not clock.attached


def test_attached_the_time_is_the_simulators_and_continues_from_where_it_stood(
    fake: FakeRunner,
) -> None:
    clock = SimClock()
    clock.start_clock()
    before = clock.current_time()
    clock.attach(fake.host)
    at = clock.current_time()
    assert at >= before
    fake.run_to(3 * MCU_HZ)  # three simulated seconds, however long they took
    assert clock.current_time() == pytest.approx(at + 3.0, abs=1e-9)
    assert clock.current_time() == clock.current_time()  # the runner stands: time stands


def test_a_read_never_runs_time_back(fake: FakeRunner) -> None:
    clock = attached(fake)
    fake.run_to(MCU_HZ)
    later = clock.current_time()
    fake.run_to(MCU_HZ // 2)
    assert clock.current_time() == later


def test_the_lease_is_the_next_deadline_or_lead_ahead_whichever_comes_first(
    fake: FakeRunner,
) -> None:
    clock = attached(fake)
    now = clock.current_time()
    clock.deadline_to_sleep_time(now + 0.001)  # a timer 1 ms ahead: exactly there
    (lease,) = fake.leases()
    assert lease == int(0.001 * MCU_HZ) + 1
    fake.run_to(lease)
    assert clock.current_time() >= now + 0.001  # at its lease the deadline has come
    assert clock.deadline_to_sleep_time(now + 0.001) == 0.0
    assert fake.leases() == []  # a deadline that has come grants nothing

    now = clock.current_time()
    clock.deadline_to_sleep_time(now + 600.0)  # a far timer: no further than LEAD ahead
    (lease,) = fake.leases()
    assert (lease - fake.cycles[0]) / MCU_HZ == pytest.approx(LEAD, abs=2 / MCU_HZ)
    clock.deadline_to_sleep_time(now + 600.0)
    clock.deadline_to_sleep_time(now + 0.0001)  # an earlier one: a lease is never taken back
    assert fake.leases() == []


def test_after_the_runner_hangs_up_the_time_runs_on_with_the_wall_clock(
    fake: FakeRunner,
) -> None:
    clock = attached(fake)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(clock.serve)
            fake.run_to(5 * MCU_HZ)
            stood = clock.current_time()
            fake.sock.close()
            with trio.fail_after(5):
                while clock.attached:
                    await trio.sleep(0)
            assert clock.current_time() >= stood
            # a timeout now is real time again (stopping the runner keeps its meaning)
            assert clock.deadline_to_sleep_time(clock.current_time() + 2.0) == pytest.approx(
                2.0, abs=0.5
            )

    trio.run(main)


def test_in_a_run_timers_fire_at_their_simulated_times_and_the_runner_never_passes_them(
    fake: FakeRunner,
) -> None:
    clock = SimClock()
    late: list[float] = []
    passed: list[int] = []

    async def simulator() -> None:
        """Runs to each lease at once (an infinitely fast sim) and says it stands there."""
        while True:
            await trio.lowlevel.wait_readable(fake.sock)
            for lease in fake.leases():
                fake.run_to(max(fake.cycles[0], lease))
            fake.sock.send(LEASE.pack(fake.cycles[0]))

    async def main() -> None:
        clock.attach(fake.host)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(clock.serve)
            nursery.start_soon(simulator)
            for delay in (0.25, 0.3, 1.0, 0.02, 2.0):
                due = trio.current_time() + delay
                await trio.sleep_until(due)
                late.append(trio.current_time() - due)
                passed.append(fake.cycles[0])
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)
    assert len(late) == 5
    assert all(0 <= x <= 2 / MCU_HZ for x in late)  # to the cycle: not late, never early
    # 3.57 s in leases of LEAD at most: the fake ran to every deadline, never past it
    assert passed[-1] / MCU_HZ == pytest.approx(3.57, abs=5 * 2 / MCU_HZ)
