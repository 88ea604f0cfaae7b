"""The board on the real path (pyserial on ptys, real time): the hello it must give after the
port opens, a `reset = true` step that closes and reopens a port without modem lines and waits
for the new boot, and a board found again by its USB id when it comes back at another path."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
import serial.tools.list_ports
import trio
from serial.tools.list_ports_common import ListPortInfo

from harness.cli import main
from harness.errors import TargetError, found_in
from harness.runner.bus import Published, RunEvent
from harness.runner.context import RunOptions, tap
from harness.runner.run import run_scenario
from harness.scenario.load import load, parse
from harness.scenario.profile import Profile
from harness.targets import make_target
from harness.targets.board import BoardTarget
from harness.targets.mock.device import MockDevice
from harness.targets.simrunner import SimRunner
from harness.transports.pty import Pty
from harness.transports.serialport import SerialStream
from harness.transports.usbports import UsbId
from tests.replug import read_across_the_outage

NO_HELLO = (
    r"no hello from {path} within 0\.5 s: check that the powerhil firmware is flashed "
    r"\(pio run -t upload\), that the port runs at 115200 baud, and the cable .*"
)


@pytest.mark.parametrize("command", ["run scenarios/clean.toml", "monitor"])
def test_a_port_that_never_says_hello_is_one_line_and_exit_2(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Something is on the port, but not the firmware (or not at this baud): the run stops at
    the timeout with one line naming the port and what to check."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        code = main(
            [
                *command.split(),
                "--target",
                "board",
                "--serial",
                path,
                "--no-view",
                "--db",
                f"{tmp_path}/h.db",
                "--hello-timeout",
                "0.5",
            ]
        )
    finally:
        os.close(master)
        os.close(slave)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and re.fullmatch(NO_HELLO.format(path=re.escape(path)), err[:-1])


def test_a_hello_timeout_that_is_not_a_number_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["monitor", "--target", "board", "--hello-timeout", "soon"])
    assert code == 2
    assert (
        "--hello-timeout: 'soon': expected a positive number of seconds" in capsys.readouterr().err
    )


async def test_reset_scenario_passes_on_the_simulated_uno(tmp_path: Path) -> None:
    """The simulator as a stand-alone Uno (`--reset-on-open`: opening its pty resets it): the
    board target's reset closes and reopens the pty, the run waits for the new boot, and
    reset.toml passes on the real serial path. Real time: 30 s."""
    out = io.StringIO()
    async with trio.open_nursery() as nursery:
        runner = SimRunner(["--reset-on-open"])
        path = await runner.start(nursery)
        result = await run_scenario(
            load("scenarios/reset.toml"), RunOptions(target="board", serial=path, out=out)
        )
        nursery.cancel_scope.cancel()
    rec = result.record
    assert result.exit_code == 0, (rec.expectations, out.getvalue())
    first, second = rec.device.boots
    assert second == first + 1
    (reset,) = rec.device.resets
    assert 12.1 <= reset.at < 12.1 + 1.0  # the new boot was seen before the next step (14 s)
    assert runner.process is not None and runner.process.returncode is not None


RESET_AT_1S = """\
[scenario]
name = "reset"
duration = "6s"
[[step]]
at = "1s"
reset = true
[[step]]
at = "1.5s"
send = { cmd = "ping" }
"""


async def test_a_reset_the_board_does_not_take_ends_the_run_with_its_data(
    tmp_path: Path,
) -> None:
    """A board that does not reset when the port closes and reopens (the mock on a pty keeps
    running): no new boot within the timeout ends the run as an error naming the port, with
    what came before kept, and the steps after the reset are not run."""
    pty = Pty()
    device = MockDevice(profile=Profile.constant(5.0, 0.25))
    scenario = parse(RESET_AT_1S, tmp_path / "r.toml")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(device.run, pty.stream)
        target = BoardTarget(pty.path, hello_timeout=1.0)
        result = await run_scenario(
            scenario, RunOptions(target="board", out=io.StringIO()), (), target
        )
        nursery.cancel_scope.cancel()
    await pty.aclose()
    rec = result.record
    assert result.exit_code == 2 and rec.verdict == "error"
    assert rec.error is not None and rec.error.startswith(
        f"no new boot from {pty.path} within 1 s of the reset: check that the board resets on DTR"
    )
    assert rec.link.delivered >= 1
    assert [c.name for c in rec.commands if not c.reapplied] == []  # the ping was never sent


async def test_a_reset_cut_short_is_an_outage_the_stream_recovers_from() -> None:
    """A reset cancelled while the port is closed leaves it closed: that is reported as an
    outage, and the next read reopens the port and gets what the board sends."""
    pty = Pty()
    outages: list[tuple[float, float | None]] = []
    stream = SerialStream(pty.path, on_outage=lambda s, e: outages.append((s, e)))
    with trio.move_on_after(0.05):
        await stream.reset(hold=10.0)
    assert [end is None for _, end in outages] == [True]
    assert await read_across_the_outage(stream, outages, pty) == b"after\n"
    await stream.aclose()
    await pty.aclose()


def usb_port(path: str, serial_number: str = "8543931323035171E0A1") -> ListPortInfo:
    info = ListPortInfo(path, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x2341, 0x0043, serial_number
    return info


async def test_a_port_that_comes_back_elsewhere_is_found_by_its_usb_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The board re-enumerates after an unplug: its old path is gone and the port with its
    VID:PID and serial number is at another path, where the stream reopens it."""
    first, second = Pty(), Pty()
    listed = [usb_port(first.path), usb_port("/dev/ttyACM7", serial_number="another")]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: list(listed))
    outages: list[tuple[float, float | None]] = []
    stream = SerialStream(
        first.path,
        on_outage=lambda s, e: outages.append((s, e)),
        usb_id=UsbId(0x2341, 0x0043, "8543931323035171E0A1"),
    )
    await first.aclose()  # unplugged: /dev/pts/N is gone
    listed[0] = usb_port(second.path)
    assert await read_across_the_outage(stream, outages, second) == b"after\n"
    assert stream.path == second.path
    assert [end is None for _, end in outages] == [True, False]
    await stream.aclose()
    await second.aclose()


async def test_the_run_follows_a_board_that_re_enumerates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same board at a new path after the replug: the console and the port events name the
    new path, the target describes it, and the run goes on with the rebooted board."""
    first, second = Pty(), Pty()
    listed = [usb_port(first.path)]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: list(listed))
    seen: list[RunEvent] = []

    def take(item: Published) -> None:
        if isinstance(item, RunEvent) and item.kind == "fault" and item.data["what"] == "port":
            seen.append(item)

    out = io.StringIO()
    target = BoardTarget(first.path)
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def before() -> None:
            with scope:
                await MockDevice(profile=Profile.constant(5.0, 0.25), boot=5).run(first.stream)

        async def unplug_at_2s() -> None:
            await trio.sleep(2.0)
            scope.cancel()
            await first.aclose()
            listed[0] = usb_port(second.path)
            await MockDevice(profile=Profile.constant(5.0, 0.25), boot=6).run(second.stream)

        nursery.start_soon(before)
        nursery.start_soon(unplug_at_2s)
        sc = parse('[scenario]\nname = "moved"\nduration = "6s"\n', Path("moved.toml"))
        result = await run_scenario(sc, RunOptions(target="board", out=out), (tap(take),), target)
        nursery.cancel_scope.cancel()
    await second.aclose()
    text = out.getvalue()
    assert result.exit_code == 0, (result.record.checks, text)
    assert [(e.data["fault"], e.data["port"]) for e in seen] == [
        ("unplugged", first.path),
        ("replugged", second.path),
    ]
    assert seen[1].data["was"] == first.path
    assert re.search(
        rf"port {re.escape(first.path)} replugged as {re.escape(second.path)} \(\d\.\d s without it\)",
        text,
    ), text
    assert target.describe() == f"board on {second.path} at 115200 baud"
    assert result.record.device.boots == [5, 6]


ON_THE_RAIL = """\
[scenario]
name = "on the rail"
duration = "3s"
[device]
shared_rail = true
"""


async def test_a_board_on_the_rail_may_enumerate_after_the_run_starts(tmp_path: Path) -> None:
    """A board powered from the rail has no port until the bench supply (on at 0 s) powers
    it: its port may appear within the hello timeout. A board apart from the rail must be
    there at once."""
    link = tmp_path / "ttyACM0"
    pty = Pty()
    device = MockDevice(profile=Profile.constant(5.0, 0.25))
    scenario = parse(ON_THE_RAIL, tmp_path / "rail.toml")
    async with trio.open_nursery() as nursery:

        async def enumerate_at_1s() -> None:
            await trio.sleep(1.0)
            link.symlink_to(pty.path)
            await device.run(pty.stream)

        nursery.start_soon(enumerate_at_1s)
        target = make_target("board", scenario, 0, str(link))
        # What a bench supply on the rail adds to the board: it can brown the rail out.
        target.capabilities = target.capabilities | {"brownout"}  # type: ignore[misc]
        result = await run_scenario(
            scenario, RunOptions(target="board", out=io.StringIO()), (), target
        )
        nursery.cancel_scope.cancel()
    await pty.aclose()
    assert result.exit_code == 0, result.record.checks
    assert result.record.link.delivered >= 1
    apart = parse(ON_THE_RAIL.replace("true", "false"), tmp_path / "apart.toml")
    options = RunOptions(target="board", serial=f"{tmp_path}/nope", out=io.StringIO())
    with pytest.raises(BaseExceptionGroup) as info:
        await run_scenario(apart, options)
    assert str(found_in(info.value, TargetError)).startswith(
        f"{tmp_path}/nope: no such serial port"
    )
