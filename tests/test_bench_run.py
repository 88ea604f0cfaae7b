"""`harness run --target board --supply scpi:...` end to end, with real processes: the mock
served on a pty by `harness mock` (it follows the profile itself), and a SCPI supply written
here, independent of the project's emulator, that logs every line it receives."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
BROWNOUT = ROOT / "scenarios" / "brownout.toml"
IDN = "ACME Instruments,PSU-1000,SN0042,1.0"

pytestmark = pytest.mark.slow


@dataclass
class GenericSupply:
    """A SCPI-1999 supply: `*IDN?`, `SYST:ERR?`, `*OPC?`, `SOUR:VOLT`, `SOUR:CURR`, `OUTP`,
    `MEAS:VOLT?`, `MEAS:CURR?`; a resistive load on its output; every line received kept."""

    load: float = 20.0
    volts: float = 0.0
    limit: float = 1.0
    on: bool = False
    lines: list[str] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    def answer(self, line: str) -> str | None:
        head, _, arg = line.partition(" ")
        head = head.upper()
        if head == "*IDN?":
            return IDN
        if head in ("SYST:ERR?", "SYSTEM:ERROR?"):
            return '+0,"No error"'
        if head == "*OPC?":
            return "1"
        if head in ("SOUR:VOLT", "SOURCE:VOLTAGE", "VOLT"):
            self.volts = float(arg)
        elif head in ("SOUR:CURR", "SOURCE:CURRENT", "CURR"):
            self.limit = float(arg)
        elif head in ("OUTP", "OUTPUT"):
            self.on = arg.strip().upper() in ("ON", "1")
        elif head in ("MEAS:VOLT?", "MEASURE:VOLTAGE?"):
            return f"{self._output()[0]:.4f}"
        elif head in ("MEAS:CURR?", "MEASURE:CURRENT?"):
            return f"{self._output()[1]:.5f}"
        return None

    def _output(self) -> tuple[float, float]:
        if not self.on:
            return 0.0, 0.0
        amps = self.volts / self.load
        if amps > self.limit:  # constant current
            return self.limit * self.load, self.limit
        return self.volts, amps

    async def handle(self, stream: trio.SocketStream) -> None:
        buffer = b""
        async with stream:
            async for chunk in stream:
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.decode("ascii").strip()
                    self.lines.append(line)
                    self.changed.set()
                    self.changed = trio.Event()
                    reply = self.answer(line)
                    if reply is not None:
                        await stream.send_all(reply.encode("ascii") + b"\n")

    async def serve(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self.handle, listeners)

    def settings(self, prefix: str) -> list[str]:
        return [line for line in self.lines if line.upper().startswith(prefix)]


def harness(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


MOCK_LEAD = 1.0
"""Seconds the mock's copy of the profile is delayed. The mock follows the profile on its own
clock, which starts when it does, before the run (whose start takes a Python start-up); the
brownout's "no uv alert before 6 s" leaves half a second. Delayed by this much, the mock's rail
is where the run expects it for any start-up up to 1.5 s."""


def delayed(scenario: Path, tmp: Path, by: float) -> Path:
    """A copy of `scenario` whose [[supply]] points come `by` seconds later (the rail holds
    its first value until then)."""
    import re

    text = scenario.read_text()
    shifted = re.sub(
        r'^at = "(\d+(?:\.\d+)?)s"(\s*\nvolts)',
        lambda m: f'at = "{float(m.group(1)) + by:g}s"{m.group(2)}',
        text,
        flags=re.MULTILINE,
    )
    assert shifted.count("volts") == text.count("volts") and shifted != text
    path = tmp / f"mock-{scenario.name}"
    path.write_text(shifted)
    return path


async def start_mock(tmp: Path) -> tuple[trio.Process, str]:
    mock = await trio.lowlevel.open_process(
        harness("mock", "--scenario", str(delayed(BROWNOUT, tmp, MOCK_LEAD))),
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert mock.stdout is not None
    line = b""
    with trio.fail_after(20):
        while not line.endswith(b"\n"):
            line += await mock.stdout.receive_some(1)
    return mock, line.decode().strip()


async def stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def run_args(pty: str, port: int, tmp: Path, *more: str) -> list[str]:
    return harness(
        "run",
        str(BROWNOUT),
        "--target",
        "board",
        "--serial",
        pty,
        "--supply",
        f"scpi:TCPIP::127.0.0.1::{port}::SOCKET",
        "--no-view",
        "--db",
        str(tmp / "h.db"),
        *more,
    )


def volts_set(supply: GenericSupply) -> list[float]:
    return [float(line.split()[1]) for line in supply.settings("SOUR:VOLT")]


async def test_brownout_on_a_board_drives_an_independent_scpi_supply(tmp_path: Path) -> None:
    supply = GenericSupply()
    record = tmp_path / "rec.json"
    async with trio.open_nursery() as nursery:
        port = await nursery.start(supply.serve)
        mock, pty = await start_mock(tmp_path)
        try:
            with trio.fail_after(90):
                done = await trio.run_process(
                    run_args(pty, port, tmp_path, "--json", str(record)),
                    cwd=ROOT,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
        finally:
            await stop(mock)
        nursery.cancel_scope.cancel()
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    lines = supply.lines
    assert lines[0] == "*IDN?"
    assert lines.index("SOUR:CURR 0.250") < lines.index("OUTP ON")
    volts = volts_set(supply)
    assert volts[0] == 5.0
    low = volts.index(min(volts))
    assert min(volts) == 3.0
    assert all(a >= b for a, b in itertools.pairwise(volts[: low + 1]))  # down
    assert all(a <= b for a, b in itertools.pairwise(volts[low:]))  # and back up
    assert volts[-1] == 5.0
    outputs = supply.settings("OUTP")
    assert outputs == ["OUTP ON", "OUTP OFF"]
    assert lines.index("OUTP OFF") > lines.index(f"SOUR:VOLT {volts[-1]:.3f}")
    rec = json.loads(record.read_text())
    s = rec["supply"]
    assert s["identity"] == IDN and s["by_hand"] is False and s["limits_from"] == "scenario"
    assert [x["value"] for x in s["settings"] if x["what"] == "output"] == [True, False]
    assert s["settings_total"] == len(supply.settings("SOUR:")) + 2
    assert s["readbacks_total"] > 20
    assert any(abs(r["volts"] - 3.0) < 0.01 for r in s["readbacks"])
    assert "took" in out and "limits the profile's own maxima" in out
    print(
        f"settings {s['settings_total']} skipped {s['settings_skipped']} latency max "
        f"{s['latency_max']} median {s['latency_median']}"
    )


async def test_a_stopped_run_still_switches_the_output_off(tmp_path: Path) -> None:
    supply = GenericSupply()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(supply.serve)
        mock, pty = await start_mock(tmp_path)
        try:
            run = await trio.lowlevel.open_process(
                run_args(pty, port, tmp_path), cwd=ROOT, stdout=subprocess.DEVNULL
            )
            try:
                with trio.fail_after(60):  # midway down the ramp
                    while not any(v < 4.5 for v in volts_set(supply)):
                        await supply.changed.wait()
                run.send_signal(signal.SIGINT)
                with trio.fail_after(30):
                    code = await run.wait()
            finally:
                await stop(run)
        finally:
            await stop(mock)
        nursery.cancel_scope.cancel()
    assert code == 130
    assert supply.settings("OUTP") == ["OUTP ON", "OUTP OFF"]
    assert min(volts_set(supply)) > 3.0  # stopped before the bottom of the ramp
    after_off = supply.lines[supply.lines.index("OUTP OFF") + 1 :]
    assert set(after_off) <= {"*OPC?", "MEAS:VOLT?", "MEAS:CURR?"}  # nothing set after it


async def test_a_scenario_above_the_benchs_max_volts_sends_nothing(tmp_path: Path) -> None:
    supply = GenericSupply()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(supply.serve)
        bench = tmp_path / "bench.toml"
        bench.write_text(
            f'[supply]\ndriver = "scpi"\nresource = "TCPIP::127.0.0.1::{port}::SOCKET"\n'
            "[limits]\nmax_volts = 4.5\nmax_amps = 0.5\n"
        )
        argv = harness(
            *("run", str(BROWNOUT), "--target", "board", "--serial", os.devnull),
            *("--bench", str(bench), "--no-view", "--db", str(tmp_path / "h.db")),
        )
        done = await trio.run_process(
            argv,
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        nursery.cancel_scope.cancel()
    assert done.returncode == 2
    err = done.stderr.decode().strip()
    assert err == ("brownout.toml: supply[1] at 0s: 5 V is above the bench's max_volts 4.5 V"), err
    assert supply.lines == []
    assert not (tmp_path / "h.db").exists()  # refused before the log was opened
