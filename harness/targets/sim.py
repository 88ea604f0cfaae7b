"""The sim target: the very firmware ELF `pio run -t upload` would flash, running in simavr
(firmware/sim's powerhil-sim) with a simulated INA219 whose rail follows the scenario.

It builds what is missing (`make firmware sim`), starts the runner, drives the supply profile
over its control channel (at each point, and every RAMP_STEP along a ramp), talks to the
firmware's UART through the runner's pseudo-terminal, and stops the runner when the run ends or
is interrupted, leaving no process behind. If the runner dies, the run ends with its exit
status and the tail of its stderr. In virtual time (`--fast`) the run's clock is the
simulator's (`virtual_clock`, harness/targets/simclock.py) and the runner unthrottled.
"""

from __future__ import annotations

import bisect
import shutil
import socket
import tempfile
from pathlib import Path

import trio

from harness.errors import TargetError
from harness.scenario.model import Scenario
from harness.targets.base import OnTargetEvent, SensorOverMax
from harness.targets.simclock import SimClock
from harness.targets.simrunner import ELF, SimRunner
from harness.transports.pty import open_pty_client

RAMP_STEP = 0.01
"""Seconds between supply updates while the rail ramps."""


class SimTarget:
    name = "sim"
    capabilities = frozenset({"supply", "reset", "brownout", "virtual_time"})
    truth = None

    def __init__(self, scenario: Scenario, seed: int, eeprom: Path | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.eeprom = eeprom
        self.runner: SimRunner | None = None
        self._scratch: Path | None = None

    def virtual_clock(self) -> trio.abc.Clock:
        """The clock of a run in virtual time (`--fast`): the simulator's own, the runner
        unthrottled (harness/targets/simclock.py). A run on another clock runs the sim in real
        time; a sim started under a SimClock of its own making runs in its time too, one after
        another (the pytest plugin's tests)."""
        from harness.targets import virtual_clock

        return virtual_clock("sim")

    @property
    def failure(self) -> str | None:
        """Why the runner stopped on its own, if it did."""
        return None if self.runner is None else self.runner.failure

    @property
    def clock(self) -> dict[str, float]:
        """The runner's simulated and wall seconds and their ratio, read as it is stopped."""
        return {} if self.runner is None else self.runner.clock

    def describe(self) -> str:
        return f"firmware in simavr ({ELF})"

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        """The runner reports brown-outs as resets the host sees in the firmware's hello;
        `on_event` hears of the rail going above the INA219's absolute maximum and back."""
        spec = self.scenario.device
        volts, amps = self.scenario.supply.at(0.0)
        if self.eeprom is None:  # no store: a scratch EEPROM for this run only
            self._scratch = Path(tempfile.mkdtemp(prefix="powerhil-sim-"))
            nursery.start_soon(self._remove_scratch, self._scratch)
        eeprom = self.eeprom or self._scratch / "eeprom.bin"
        options = [
            "--wait-open",
            "--volts",
            f"{volts:g}",
            "--amps",
            f"{amps:g}",
            "--shunt",
            f"{spec.shunt:g}",
            "--eeprom",
            str(eeprom),
            *(["--shared"] if spec.shared_rail else []),
        ]
        clock = trio.lowlevel.current_clock()
        if isinstance(clock, SimClock) and not clock.attached:  # a loop in virtual time
            path = await self._start_fast(nursery, options, clock)
        else:
            self.runner = SimRunner(options)
            path = await self.runner.start(nursery)
        stream = open_pty_client(path)
        nursery.start_soon(self._drive_supply, origin, on_event)
        return stream

    async def _start_fast(self, nursery: trio.Nursery, options: list[str], clock: SimClock) -> str:
        """The runner unthrottled on the lease socket, its time the run's clock's."""
        lease, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with theirs:
                self.runner = SimRunner(
                    ["--fast", str(theirs.fileno()), *options], pass_fds=(theirs.fileno(),)
                )
                path = await self.runner.start(nursery)
            clock.attach(lease)
        except OSError as exc:
            lease.close()
            raise TargetError(f"the sim runner's --fast clock: {exc}") from None
        except BaseException:
            lease.close()
            raise
        nursery.start_soon(self._serve_clock, clock, lease)
        return path

    async def _serve_clock(self, clock: SimClock, lease: socket.socket) -> None:
        """The clock's notices until the runner hangs up (its exit is the runner's watch's to
        report) or the run ends: then the runner is stopped on the wall clock (its timeouts
        real) while it still has its socket, whose end would end it."""
        hung_up = False
        try:
            await clock.serve()
            hung_up = True
        finally:
            clock.detach()
            if not hung_up and self.runner is not None:
                with trio.CancelScope(shield=True):
                    await self.runner.stop()
            lease.close()

    async def _remove_scratch(self, scratch: Path) -> None:
        """At the end of the run (the nursery's cancellation), once the runner has stopped."""
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                if self.runner is not None:
                    await self.runner.stop()
            shutil.rmtree(scratch, ignore_errors=True)

    async def reset(self) -> None:
        if self.runner is not None:
            await self.runner.command("reset")

    def set_line_rate(self, rate: float | None) -> None:
        """The simulated UART runs at the firmware's own baud; a link step paces the relay."""

    async def _drive_supply(self, origin: float, on_event: OnTargetEvent) -> None:
        """Follow the profile: a set at each point; every RAMP_STEP while it ramps. Each answer
        says whether the rail is above the INA219's absolute maximum: a change is an event."""
        assert self.runner is not None
        points = self.scenario.supply.points
        times = [p.at for p in points]
        last: tuple[float, float] | None = None
        over_max = False
        while True:
            t = trio.current_time() - origin
            volts, amps = self.scenario.supply.at(t)
            if (volts, amps) != last:
                answer = await self.runner.command(f"set volts={volts:.4f} amps={amps:.5f}")
                last = (volts, amps)
                if (over := " over_max=1 " in f"{answer} ") != over_max:
                    over_max = over
                    on_event(SensorOverMax(trio.current_time(), volts, over))
            i = bisect.bisect_right(times, t)
            if i >= len(points):
                return  # the rail stays put after the last point
            ramping = i > 0 and (points[i - 1].volts, points[i - 1].amps) != (
                points[i].volts,
                points[i].amps,
            )
            await trio.sleep_until(origin + (min(t + RAMP_STEP, times[i]) if ramping else times[i]))

    def stop(self) -> bool:
        """Nothing of it must end before the drain."""
        return False

    async def why_it_ended(self) -> str | None:
        """After the firmware's stream ended: the runner's exit, if that is what happened."""
        if self.runner is None:
            return None
        with trio.move_on_after(1.0):
            await self.runner.exited.wait()
        return self.runner.failure
