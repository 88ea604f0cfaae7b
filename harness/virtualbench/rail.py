"""The emulated supply's output as the simulator's rail: each change of the output's settings
becomes a `set` on the runner's control channel with what the terminals then carry (the set
volts, or less in constant current; the load's current; the supply on or off)."""

from __future__ import annotations

import trio

from harness.supplies.emulated import EmulatedOutput, Terminals
from harness.targets.simrunner import SimRunner


def rail_command(terminals: Terminals) -> str:
    """The control line that puts `terminals` on the simulator's rail."""
    if terminals.mode == "off":
        return "set supply=off"
    return f"set volts={terminals.volts:.4f} amps={terminals.amps:.5f} supply=on"


class RailFeed:
    """Follows `output` onto `runner`'s rail. `changed` is the output's `on_output` hook (it is
    called synchronously, inside the instrument's handling of a command); `run` sends the rail
    of the latest state, so changes that come faster than the runner answers are merged."""

    def __init__(self, output: EmulatedOutput, runner: SimRunner) -> None:
        self.output = output
        self.runner = runner
        self._due = trio.Event()
        self.sent: list[str] = []
        """Every control line sent, in order."""

    def changed(self, volts: float, amps_limit: float, on: bool) -> None:
        self._due.set()

    async def run(self) -> None:
        while True:
            await self._due.wait()
            self._due = trio.Event()
            line = rail_command(self.output.terminals())
            self.sent.append(line)
            await self.runner.command(line)
