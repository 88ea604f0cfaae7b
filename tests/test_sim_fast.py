"""The runner unthrottled (`powerhil-sim --fast FD`, firmware/sim/README.md): it runs only as
far as it is granted, shares its time on a page, and paces the UART rather than drop bytes
when the host stops reading; the tests are the host and grant leases by hand. And a run in
virtual time whose runner dies."""

from __future__ import annotations

import io
import mmap
import os
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from harness.runner.context import RunContext, RunOptions
from harness.runner.run import run
from harness.scenario.load import load
from harness.targets.simclock import LEASE, MCU_HZ, PAGE
from tests.test_sim_runner import RUNNER, SKETCH, Board, LineReader, built, parse_ok

__all__ = ["built"]  # the session fixture that builds the runner and its sketch

STILL = 0.3
"""Real seconds between two looks that find the runner standing still (never asserted on)."""


class FastRunner:
    def __init__(self, *args: str) -> None:
        self.host, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [str(RUNNER), "--fast", str(theirs.fileno()), *args, str(SKETCH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        assert self.proc.stdout and self.proc.stdin
        self.out = LineReader(self.proc.stdout.fileno())
        match = re.fullmatch(r"pty (/dev/pts/\d+)", self.out.line())
        assert match
        self.pty = match.group(1)
        _, fds, _, _ = socket.recv_fds(self.host, LEASE.size, 1)
        self.page = mmap.mmap(fds[0], PAGE, prot=mmap.PROT_READ)
        os.close(fds[0])

    @property
    def cycles(self) -> int:
        return int.from_bytes(self.page[:8], "little")

    def grant(self, seconds: float) -> None:
        self.host.send(LEASE.pack(round(seconds * MCU_HZ)))

    def ctl(self, line: str) -> dict[str, str]:
        assert self.proc.stdin
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return parse_ok(self.out.line())

    def reaches(self, seconds: float) -> bool:
        """Whether the simulation gets to `seconds` (False: it stood still short of it)."""
        target, last, since = round(seconds * MCU_HZ), -1, time.monotonic()
        while (now := self.cycles) < target:
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > STILL:
                return False
            time.sleep(0.0002)
        return True

    def standing(self) -> dict[str, str]:
        """The state once the runner no longer moves (it waits for a lease or for the host)."""
        last = self.ctl("get")
        while True:
            time.sleep(STILL)
            state = self.ctl("get")
            if (state["t"], state["tx"]) == (last["t"], last["tx"]):
                return state
            last = state

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        self.page.close()
        self.host.close()


@pytest.fixture
def fast() -> Iterator[FastRunner]:
    runner = FastRunner("--wait-open")
    yield runner
    runner.stop()


def test_without_a_lease_the_simulation_stands_at_zero(fast: FastRunner) -> None:
    board = Board(fast.pty)
    state = fast.standing()
    assert float(state["t"]) == 0.0 and fast.cycles == 0
    assert state["mcu"] == "run" and state["tx"] == "0"  # the client came: it boots, then waits
    fast.grant(0.5)
    assert re.fullmatch(r"boot \d+ cal=0", board.line())
    state = fast.standing()
    assert float(state["t"]) == pytest.approx(0.5, abs=1e-6)  # to its lease
    # and no further than the instruction it was in (an AVR instruction takes up to 5 cycles)
    assert 8_000_000 <= fast.cycles <= 8_000_000 + 5
    board.close()


def test_a_host_that_stops_reading_pauses_the_simulation_and_loses_no_byte(
    fast: FastRunner,
) -> None:
    board = Board(fast.pty)
    lease = 0.5
    fast.grant(lease)
    boot = board.line()
    assert re.fullmatch(r"boot \d+ cal=0", boot)
    # One command each 10 ms, at its simulated time (each answer takes about 6 ms on the
    # line), and no answer read: the pty and the runner's ring fill after some 25 kB.
    asked = 0
    while asked < 4000:
        os.write(board.fd, b"d\n")
        asked += 1
        lease += 0.01
        fast.grant(lease)
        if not fast.reaches(lease):
            break
    else:
        pytest.fail("the runner never waited for the host to read")
    state = fast.ctl("get")
    assert state["tx_dropped"] == "0" and float(state["t"]) < lease
    answered = [board.line() for _ in range(asked)]  # reading lets it run on to its lease
    assert all(a.startswith("d cfg=") for a in answered), set(answered)
    state = fast.ctl("get")
    assert state["tx_dropped"] == "0" and state["rx_dropped"] == "0"
    assert int(state["rx"]) == 2 * asked
    assert asked > 300  # it waited on a full pty, not on something else
    assert int(state["tx"]) == len("".join(f"{a}\r\n" for a in answered)) + len(boot) + 2
    board.close()


def test_a_runner_dying_mid_run_in_virtual_time_ends_the_run_with_its_exit() -> None:
    """The clock then runs on the wall clock from where it stood: the run does not hang on a
    simulated time that no longer moves."""
    seen: list[RunContext] = []

    @asynccontextmanager
    async def kill_the_runner(ctx: RunContext) -> AsyncIterator[None]:
        seen.append(ctx)

        async def later() -> None:
            await trio.sleep(3.5)  # simulated seconds
            ctx.target.runner.process.kill()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            yield

    scenario = load("scenarios/clean.toml")
    options = RunOptions(target="sim", fast=True, out=io.StringIO())
    result = run(scenario, options, (kill_the_runner,))
    rec = result.record
    assert result.exit_code == 2 and rec.verdict == "error"
    assert rec.error.startswith("the sim runner exited with status -9")
    assert rec.virtual_time and rec.link.delivered >= 2
    process = seen[0].target.runner.process
    assert process.returncode is not None and not Path(f"/proc/{process.pid}").exists()
