"""The sim target: the very firmware ELF `pio run -t upload` would flash, running in simavr
(firmware/sim's powerhil-sim) with a simulated INA219 whose rail follows the scenario.

It builds what is missing (`make firmware sim`), starts the runner, drives the supply profile
over its control channel (at each point, and every RAMP_STEP along a ramp), talks to the
firmware's UART through the runner's pseudo-terminal, and stops the runner when the run ends or
is interrupted, leaving no process behind. If the runner dies, the run ends with its exit
status and the tail of its stderr.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import trio

from harness.errors import TargetError
from harness.scenario.model import Scenario
from harness.targets.base import OnTargetEvent
from harness.transports.pty import open_pty_client

RAMP_STEP = 0.01
"""Seconds between supply updates while the rail ramps."""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0
STDERR_LINES = 20
SOURCE_ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path("firmware/build/sim/powerhil-sim")
ELF = Path("firmware/build/uno/powerhil.elf")


def source_root() -> Path:
    """The checkout the sim is built in (the sim needs the firmware's sources and a toolchain)."""
    if not (SOURCE_ROOT / "firmware" / "sim").is_dir():
        raise TargetError(
            "the sim target needs a source checkout of powerhil (firmware/ not found next to the harness package)"
        )
    return SOURCE_ROOT


async def build(root: Path) -> None:
    """`make firmware sim`: quick when both are up to date. A missing toolchain or simavr is
    one line naming the Debian packages to install."""
    try:
        done = await trio.run_process(
            ["make", "--no-print-directory", "-C", str(root), "firmware", "sim"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    except FileNotFoundError:
        raise TargetError("the sim target needs make: sudo apt-get install make") from None
    if done.returncode != 0:
        lines = [x for x in done.stderr.decode(errors="replace").splitlines() if x.strip()]
        hint = next((x for x in lines if "apt-get install" in x), None)
        raise TargetError(
            hint
            or f"building the firmware and the sim failed: {lines[-1] if lines else done.returncode}"
        )


class _Control:
    """The runner's control channel: one line in, one line out."""

    def __init__(self, stdin: trio.abc.SendStream, stdout: trio.abc.ReceiveStream) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._buf = bytearray()
        self._lock = trio.Lock()

    async def readline(self) -> str:
        while (nl := self._buf.find(b"\n")) < 0:
            data = await self._stdout.receive_some(4096)
            if not data:
                raise TargetError("the sim runner closed its output")
            self._buf += data
        line = bytes(self._buf[:nl])
        del self._buf[: nl + 1]
        return line.decode(errors="replace")

    async def command(self, line: str) -> str:
        async with self._lock:
            await self._stdin.send_all(line.encode() + b"\n")
            return await self.readline()


class SimTarget:
    name = "sim"
    capabilities = frozenset({"supply", "reset", "brownout"})
    truth = None

    def __init__(self, scenario: Scenario, seed: int, eeprom: Path | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.eeprom = eeprom
        self.failure: str | None = None
        """Why the runner stopped on its own, if it did."""
        self._process: trio.Process | None = None
        self._control: _Control | None = None
        self._nursery: trio.Nursery | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stopping = False
        self._exited = trio.Event()
        self._scratch: Path | None = None
        self.clock: dict[str, float] = {}
        """The runner's simulated and wall seconds and their ratio, read as it is stopped."""

    def describe(self) -> str:
        return f"firmware in simavr ({ELF})"

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        """The runner reports brown-outs as resets the host sees in the firmware's hello, so
        `on_event` has nothing of its own to hear."""
        root = source_root()
        await build(root)
        self._nursery = nursery
        spec = self.scenario.device
        volts, amps = self.scenario.supply.at(0.0)
        if self.eeprom is None:  # no store: a scratch EEPROM for this run only
            self._scratch = Path(tempfile.mkdtemp(prefix="powerhil-sim-"))
        eeprom = self.eeprom or self._scratch / "eeprom.bin"
        args = [
            str(root / RUNNER),
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
            str(root / ELF),
        ]
        process = await trio.lowlevel.open_process(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._process = process
        assert process.stdin and process.stdout and process.stderr
        self._control = _Control(process.stdin, process.stdout)
        nursery.start_soon(self._keep_stderr, process.stderr)
        nursery.start_soon(self._watch)
        with trio.move_on_after(START_TIMEOUT):
            first = await self._control.readline()
            if first.startswith("pty "):
                stream = open_pty_client(first[4:].strip())
                nursery.start_soon(self._drive_supply, origin)
                return stream
        await self._stop()
        raise TargetError(f"the sim runner did not start: {self._tail() or 'no output'}")

    def reset(self) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._command, "reset")

    def set_line_rate(self, rate: float | None) -> None:
        """The simulated UART runs at the firmware's own baud; a link step paces the relay."""

    async def _command(self, line: str) -> str:
        assert self._control is not None
        answer = await self._control.command(line)
        if not answer.startswith("ok"):
            self._stderr.append(f"{line}: {answer}")
        return answer

    async def _drive_supply(self, origin: float) -> None:
        """Follow the profile: a set at each point; every RAMP_STEP while it ramps."""
        points = self.scenario.supply.points
        times = [p.at for p in points]
        last: tuple[float, float] | None = None
        while True:
            t = trio.current_time() - origin
            volts, amps = self.scenario.supply.at(t)
            if (volts, amps) != last:
                await self._command(f"set volts={volts:.4f} amps={amps:.5f}")
                last = (volts, amps)
            i = bisect.bisect_right(times, t)
            if i >= len(points):
                return  # the rail stays put after the last point
            ramping = i > 0 and (points[i - 1].volts, points[i - 1].amps) != (
                points[i].volts,
                points[i].amps,
            )
            await trio.sleep_until(origin + (min(t + RAMP_STEP, times[i]) if ramping else times[i]))

    async def _keep_stderr(self, stderr: trio.abc.ReceiveStream) -> None:
        buf = b""
        while data := await stderr.receive_some(4096):
            buf += data
            *lines, buf = buf.split(b"\n")
            self._stderr.extend(x.decode(errors="replace") for x in lines if x.strip())

    def _tail(self) -> str:
        return " | ".join(self._stderr)

    async def _watch(self) -> None:
        """Notice the runner dying; on the run's end (cancellation), stop it cleanly."""
        assert self._process is not None
        try:
            code = await self._process.wait()
            if not self._stopping:
                self.failure = (
                    f"the sim runner exited with status {code}: {self._tail() or 'no stderr'}"
                )
            self._exited.set()
        finally:
            with trio.CancelScope(shield=True):
                await self._stop()

    async def _stop(self) -> None:
        """End the runner if it still runs, then remove the run's scratch EEPROM."""
        process = self._process
        if process is not None and process.returncode is None:
            self._stopping = True
            await self._read_clock()
            await _end(process)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    async def _read_clock(self) -> None:
        """`time` answers `ok sim=S wall=W ratio=R`; kept in `clock` for the record."""
        if self._control is None:
            return
        with trio.move_on_after(1.0):
            with contextlib.suppress(TargetError, trio.BrokenResourceError, OSError):
                answer = await self._control.command("time")
                if answer.startswith("ok "):
                    pairs = (x.partition("=") for x in answer.split()[1:])
                    self.clock = {k: float(v) for k, _, v in pairs}

    async def why_it_ended(self) -> str | None:
        """After the firmware's stream ended: the runner's exit, if that is what happened."""
        with trio.move_on_after(1.0):
            await self._exited.wait()
        return self.failure


async def _end(process: trio.Process) -> None:
    """quit, then SIGTERM, then SIGKILL: no process is left behind."""
    with trio.move_on_after(STOP_TIMEOUT):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            assert process.stdin is not None
            await process.stdin.send_all(b"quit\n")
        await process.wait()
        return
    process.terminate()
    with trio.move_on_after(STOP_TIMEOUT):
        await process.wait()
        return
    process.kill()
    await process.wait()
