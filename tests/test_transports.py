"""Pseudo-terminals and serial ports: the path a real board takes, without the board."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import serial
import trio

from harness.cli import main
from harness.link import DeviceLog, Direction, Hello, Reply, Sample, decode
from harness.link.frame import wrap
from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.load import load
from harness.targets.mock.device import MockDevice
from harness.targets.mock.ina219 import READY_LOG
from harness.transports.pty import Pty
from harness.transports.serialport import BACKOFF_FIRST, SerialStream
from tests.replug import read_across_the_outage


def test_missing_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            "scenarios/clean.toml",
            "--target",
            "board",
            "--serial",
            "/dev/ttyNOPE0",
            "--no-view",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("/dev/ttyNOPE0: no such serial port")


def test_busy_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    pty = os.openpty()
    path = os.ttyname(pty[1])
    holder = serial.Serial(path, 115200, exclusive=True)
    try:
        code = main(
            ["run", "scenarios/clean.toml", "--target", "board", "--serial", path, "--no-view"]
        )
    finally:
        holder.close()
        os.close(pty[0])
        os.close(pty[1])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"{path}: port busy: another program has it open (close the serial monitor and retry)\n"
    )


def test_fast_needs_the_mock(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["run", "scenarios/clean.toml", "--target", "board", "--serial", "/dev/null", "--fast"]
        )
        == 2
    )
    assert "--fast runs in virtual time" in capsys.readouterr().err


def read_frames(port: serial.Serial, count: int) -> list[object]:
    port.timeout = 5
    out = []
    while len(out) < count:
        line = port.readline()
        assert line, "the mock said nothing for 5 s"
        out.append(decode(line, Direction.DEVICE_TO_HOST))
    return out


def test_harness_mock_serves_a_pty_a_terminal_can_use() -> None:
    """`harness mock` prints a path; a serial terminal sees frames and can send a command."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "mock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        with serial.Serial(path, 115200, timeout=5) as port:
            frames = read_frames(port, 3)
            assert frames[0] == DeviceLog(READY_LOG[1:].strip())  # as the firmware, at boot
            assert isinstance(frames[1], Hello)
            assert isinstance(frames[2], Sample) and 4.9 < frames[2].v < 5.1
            port.write(wrap(b'{"cmd":"ping","seq":7}'))
            replies = [f for f in read_frames(port, 3) if isinstance(f, Reply)]
            assert replies == [Reply(7)]
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
    assert proc.stderr is not None and "mock stopped" in proc.stderr.read()


async def test_serial_stream_reconnects_after_unplug_and_reports_the_outage(tmp_path: Path) -> None:
    """The port vanishes (the pty closes) and comes back at the same path (a symlink, as udev
    gives an Arduino a stable name): reads resume and the outage is reported start and end."""
    link = tmp_path / "ttyARDUINO"
    first = Pty()
    link.symlink_to(first.path)
    outages: list[tuple[float, float | None]] = []
    stream = SerialStream(str(link), on_outage=lambda s, e: outages.append((s, e)))
    await first.stream.send_all(b"before\n")
    assert await stream.receive_some(100) == b"before\n"
    await first.aclose()
    second = Pty()
    link.unlink()
    link.symlink_to(second.path)
    assert await read_across_the_outage(stream, outages, second) == b"after\n"
    assert outages[0][1] is None and outages[1][1] is not None
    await stream.aclose()
    await second.aclose()


async def test_serial_stream_reconnects_while_its_receives_keep_being_cancelled(
    tmp_path: Path,
) -> None:
    """A host session cancels its receive at each deadline of the link, more often than the
    port is retried: the outage still ends, and the next receive gets what the board sends."""
    link = tmp_path / "ttyARDUINO"
    first = Pty()
    link.symlink_to(first.path)
    outages: list[tuple[float, float | None]] = []
    stream = SerialStream(str(link), on_outage=lambda s, e: outages.append((s, e)))
    await first.aclose()
    second = Pty()
    link.unlink()
    link.symlink_to(second.path)
    with trio.fail_after(10):
        while len(outages) < 2:
            with trio.move_on_after(BACKOFF_FIRST / 5):
                got = await stream.receive_some(100)
                pytest.fail(f"received {got!r} before anything was sent")
        await second.stream.send_all(b"after\n")
        assert await stream.receive_some(100) == b"after\n"
    await stream.aclose()
    await second.aclose()


async def test_brownout_passes_with_the_mock_on_a_pty_and_the_harness_on_pyserial() -> None:
    """The board's path end to end: scenario on the mock behind a real pty, the harness on the
    pyserial transport (`--target board --serial PATH`). Real time: 20 s."""
    scenario = load("scenarios/brownout.toml")
    pty = Pty()
    device = MockDevice(profile=scenario.supply, spec=scenario.device, seed=scenario.seed)
    async with trio.open_nursery() as nursery:
        origin = trio.current_time()
        nursery.start_soon(device.run, pty.stream, origin)
        result = await run_scenario(
            scenario, RunOptions(target="board", serial=pty.path, out=io.StringIO())
        )
        nursery.cancel_scope.cancel()
    with serial.Serial(pty.path, exclusive=True):  # the run let go of the port
        pass
    await pty.aclose()
    rec = result.record
    assert result.exit_code == 0, rec.expectations
    assert rec.target == "board" and rec.link.lost == 0
    assert sum(rec.injected.values()) > 0
    assert sum(device.produced.values()) == rec.link.delivered
