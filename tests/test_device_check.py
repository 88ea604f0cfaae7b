"""The check every run makes besides the scenario's expectations: the device kept reporting, and
a replugged port still leads to it. Printed on the console as it happens, recorded, and failing
the run."""

from __future__ import annotations

import io
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from harness.runner.bus import Published, RunEvent
from harness.runner.console import ERASE, Console
from harness.runner.context import Extension, RunOptions, tap
from harness.runner.run import run_scenario
from harness.scenario.load import parse
from harness.scenario.model import Scenario
from harness.scenario.profile import Profile
from harness.targets import OnTargetEvent
from harness.targets.mock import MockTarget
from harness.targets.mock.device import MockDevice
from harness.transports.pty import Pty

WATCHED = ("silent", "reporting", "other_device")


def options(**kw: object) -> RunOptions:
    return RunOptions(fast=True, out=io.StringIO(), **kw)  # type: ignore[arg-type]


def events_of(kinds: tuple[str, ...], into: list[RunEvent]) -> Extension:
    """An extension that keeps the run's events of these kinds in `into`."""

    def take(item: Published) -> None:
        if isinstance(item, RunEvent) and item.kind in kinds:
            into.append(item)

    return tap(take)


class Muted(trio.abc.Stream):
    """A device's stream whose output stops reaching the other end from `at` (trio time) on,
    or only until `until`: a device that stops sending, or that stops and comes back."""

    def __init__(self, inner: trio.abc.Stream, at: float, until: float = float("inf")) -> None:
        self.inner = inner
        self.at = at
        self.until = until

    def _muted(self) -> bool:
        return self.at <= trio.current_time() < self.until

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._muted():
            await trio.lowlevel.checkpoint()
        else:
            await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class MutedAfterContact(Muted):
    """Mutes `after` seconds after the harness first writes to the device: halfway through a run,
    however long the harness took to start."""

    def __init__(self, inner: trio.abc.Stream, after: float) -> None:
        super().__init__(inner, float("inf"))
        self.after = after

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        if data and self.at == float("inf"):
            self.at = trio.current_time() + self.after
        return data


GOES_QUIET = """\
[scenario]
name = "goes quiet"
duration = "10s"
[[step]]
at = "0.5s"
send = { cmd = "set_interval", value = 200 }
[[expect]]
alert = "uv"
absent = true
"""


async def test_a_board_that_stops_sending_halfway_fails_the_run(tmp_path: Path) -> None:
    """The real process on a real pty: the mock device answers for 3 s and then sends nothing
    more. `harness run --target board` notices, says so, and exits 1 (the scenario's own
    expectation, no uv alert, passes trivially)."""
    scenario = tmp_path / "quiet.toml"
    scenario.write_text(GOES_QUIET)
    db = tmp_path / "h.db"
    pty = Pty()
    device = MockDevice(profile=Profile.constant(5.0, 0.25))
    out = b""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(device.run, MutedAfterContact(pty.stream, 3.0))
        command = [sys.executable, "-m", "harness", "run", str(scenario)]
        command += ["--target", "board", "--serial", pty.path, "--no-view", "--db", str(db)]
        proc = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            assert proc.stdout is not None
            with trio.fail_after(40):
                while chunk := await proc.stdout.receive_some(4096):
                    out += chunk
                code = await proc.wait()
        finally:
            proc.kill()
            await proc.wait()
        nursery.cancel_scope.cancel()
    await pty.aclose()
    text = out.decode()
    assert code == 1, text
    (line,) = [x for x in text.splitlines() if "went silent" in x]
    assert re.fullmatch(r"\s+\d+\.\d s  device went silent: no sample since \d+\.\d s .*", line)
    assert re.search(r"FAIL  device kept reporting +silent from \d+\.\d s", text)
    assert "PASS  no uv alert" in text
    kinds = [k for (k,) in sqlite3.connect(db).execute("SELECT kind FROM events")]
    assert "silent" in kinds


class Deaf(Muted):
    """The harness's end of a device's stream, hearing nothing from `at` until `until`."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            data = await self.inner.receive_some(max_bytes)
            if not data or not self._muted():
                return data


class Gagged(MockTarget):
    """The mock, its output kept from the harness between two scenario times."""

    def __init__(self, scenario: Scenario, quiet: tuple[float, float]) -> None:
        super().__init__(scenario, scenario.seed)
        self.quiet = quiet

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        stream = await super().start(nursery, origin, on_event)
        return Deaf(stream, origin + self.quiet[0], origin + self.quiet[1])

    def stop(self) -> bool:
        """Nothing of it must end before the drain."""
        return False

    async def why_it_ended(self) -> str | None:
        return None


STEADY = """\
[scenario]
name = "steady"
duration = "30s"
[link]
baud = 115200
[[expect]]
link = { duplicated = 0 }
"""


async def test_a_device_silent_for_a_while_is_reported_both_ways_and_fails_the_run(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Nothing arrives from 10 s to 20 s: `silent` once the allowance (3 intervals plus the
    link's recovery) has passed, `reporting` when samples come again, a console line for each,
    and the run fails with the span named — though every expectation of the file passes."""
    seen: list[RunEvent] = []
    out = io.StringIO()
    sc = parse(STEADY, tmp_path / "steady.toml")
    result = await run_scenario(
        sc, RunOptions(fast=True, out=out), (events_of(WATCHED, seen),), Gagged(sc, (10.0, 20.0))
    )
    rec = result.record
    assert result.exit_code == 1 and rec.verdict == "fail"
    assert [e.state for e in rec.expectations] == ["pass"]
    silent, reporting = seen
    assert (silent.kind, reporting.kind) == ("silent", "reporting")
    assert 9.0 < silent.data["last_sample"] <= 10.0
    assert silent.at == pytest.approx(silent.data["last_sample"] + 3 * 1.0 + 3.5, abs=0.1)
    assert 20.0 <= reporting.at < 23.0
    (span,) = rec.device.silences
    assert (span.at, span.until) == (pytest.approx(silent.at, abs=1e-3), round(reporting.at, 3))
    (check,) = rec.checks
    assert check.label == "device kept reporting" and check.state == "fail"
    assert check.detail.startswith(f"silent from {silent.at:.1f} s (last sample at ")
    text = out.getvalue()
    assert f"{silent.at:8.1f} s  device went silent: no sample since" in text
    assert f"{reporting.at:8.1f} s  device reporting again" in text


QUIET_BUT_EXPECTED = {
    "brownout": """\
[scenario]
name = "long brownout"
duration = "30s"
[device]
shared_rail = true
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "3s"
volts = 5.0
[[supply]]
at = "3.5s"
volts = 1.0
[[supply]]
at = "18s"
volts = 1.0
[[supply]]
at = "18.5s"
volts = 5.0
[[expect]]
resets = 1
""",
    "outage until a stop": """\
[scenario]
name = "long outage"
duration = "30s"
[[step]]
at = "5s"
name = "cut"
outage = "start"
[[step]]
at = "20s"
outage = "stop"
[[expect]]
recovered_within = "4s"
after = "cut"
""",
    "a link step that drops everything": """\
[scenario]
name = "black hole"
duration = "30s"
[[step]]
at = "5s"
name = "hole"
link = { drop = 1.0 }
[[step]]
at = "20s"
link = { drop = 0.0 }
[[expect]]
recovered_within = "4s"
after = "hole"
""",
    "a reset with a slow interval": """\
[scenario]
name = "slow reset"
duration = "60s"
[[step]]
at = "1s"
send = { cmd = "set_interval", value = 10000 }
[[step]]
at = "25s"
reset = true
[[expect]]
resets = 1
""",
}


@pytest.mark.parametrize("text", QUIET_BUT_EXPECTED.values(), ids=QUIET_BUT_EXPECTED)
async def test_a_device_that_cannot_report_is_not_silent(
    text: str, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """No power, an outage, a link that lets nothing through, a reboot: samples stop for a
    reason the scenario gave, and the run still passes."""
    seen: list[RunEvent] = []
    rec = (
        await run_scenario(parse(text, tmp_path / "q.toml"), options(), (events_of(WATCHED, seen),))
    ).record
    assert rec.verdict == "pass", (rec.expectations, rec.checks)
    assert seen == [] and rec.device.silences == []


def test_a_line_is_printed_above_the_live_status_line() -> None:
    """On a terminal the status line has no newline after it: a line printed meanwhile erases
    it, takes the line for itself, and the status line is drawn again below."""
    out = io.StringIO()
    console = Console(out)
    console.draw("  3.0/10s | waiting for the device")
    console.say("     3.1 s  port /dev/ttyACM0 unplugged")
    console.clear()
    console.say("done")
    assert out.getvalue() == (
        f"{ERASE}  3.0/10s | waiting for the device"
        f"{ERASE}     3.1 s  port /dev/ttyACM0 unplugged\n"
        f"  3.0/10s | waiting for the device"
        f"{ERASE}done\n"
    )


class Port:
    """A serial port at a stable path (a symlink, as udev names an Arduino) behind which the test
    serves a device on a pty, and which it can unplug and replug with another pty behind it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pty = Pty()
        path.symlink_to(self.pty.path)
        self._scope: trio.CancelScope | None = None

    async def serve(self, device: MockDevice | None, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            if device is not None:
                await device.run(self.pty.stream)
            await trio.sleep_forever()

    async def replug(self, nursery: trio.Nursery, device: MockDevice | None) -> None:
        """Pull the plug, and put another pty (serving `device`, if any) at the same path."""
        assert self._scope is not None
        self._scope.cancel()
        old, self.pty = self.pty, Pty()
        self.path.unlink()
        self.path.symlink_to(self.pty.path)
        await old.aclose()  # the harness's end hangs up: it reopens the path
        await nursery.start(self.serve, device)

    async def aclose(self) -> None:
        await self.pty.aclose()


PLUGGED = """\
[scenario]
name = "replugged"
duration = "9s"
[[step]]
at = "0.5s"
send = { cmd = "set_interval", value = 250 }
[[expect]]
link = { duplicated = 0 }
"""


def rail() -> Profile:
    return Profile.constant(5.0, 0.25)


REPLUGS: dict[str, tuple[dict[str, object] | None, str | None]] = {
    # what serves the port after the replug (MockDevice's arguments; None: nothing), and what
    # the run must say of it (None: it is the same device)
    "the same board, rebooted": ({"boot": 6}, None),
    "another firmware": ({"boot": 9, "fw": "2.0.0"}, "firmware 2.0.0, the run began with 1.0.0"),
    "an older board": ({"boot": 2}, "its boot counter 2 is behind the device's 5"),
    "a port that says nothing": (None, "no hello within 5 s of the replug"),
}


@pytest.mark.parametrize("case", REPLUGS)
async def test_a_replugged_port_is_printed_and_must_lead_to_the_same_device(
    case: str, tmp_path: Path
) -> None:
    """The board's path (pyserial on a pty, real time): the cable is pulled at 2 s and the port
    comes back at the same path. The unplug and the replug are one console line each, above the
    status line; a different device behind it (another firmware's hello, a boot counter behind
    the device's, or no hello at all) is a line too and fails the run; the same board,
    rebooted, passes with the scenario's settings sent again."""
    kwargs, other = REPLUGS[case]
    device = None if kwargs is None else MockDevice(profile=rail(), **kwargs)  # type: ignore[arg-type]
    sc = parse(PLUGGED, tmp_path / "replugged.toml")
    port = Port(tmp_path / "ttyARDUINO")
    first = MockDevice(profile=rail(), boot=5)
    seen: list[RunEvent] = []
    out = io.StringIO()
    async with trio.open_nursery() as nursery:
        await nursery.start(port.serve, first)

        async def unplug_at_2s() -> None:
            await trio.sleep(2.0)
            await port.replug(nursery, device)

        nursery.start_soon(unplug_at_2s)
        opts = RunOptions(target="board", serial=str(port.path), status=True, out=out)
        result = await run_scenario(sc, opts, (events_of(("fault", *WATCHED), seen),))
        nursery.cancel_scope.cancel()
    await port.aclose()
    rec = result.record
    text = out.getvalue()
    lines = [x.split(ERASE)[-1] for x in text.split("\n")]
    unplugged = [x for x in lines if x.endswith(f"port {port.path} unplugged")]
    replugged = [
        x for x in lines if re.search(rf"port {port.path} replugged \(\d+\.\d s without it\)$", x)
    ]
    assert len(unplugged) == 1 and len(replugged) == 1, text
    assert re.fullmatch(r" +[12]\.\d s  port .*", unplugged[0])
    ports = [e for e in seen if e.kind == "fault"]
    assert [(e.data["fault"], e.data["port"]) for e in ports] == [
        ("unplugged", str(port.path)),
        ("replugged", str(port.path)),
    ]
    if other is None:
        assert result.exit_code == 0, (rec.expectations, rec.checks, text)
        assert rec.device.other_devices == [] and rec.device.boots == [5, 6]
        reapplied = [c for c in rec.commands if c.reapplied]
        assert [(c.name, c.args, c.step, c.outcome) for c in reapplied] == [
            ("set_interval", {"value": 250}, None, "done")
        ]
    else:
        assert result.exit_code == 1
        (found,) = rec.device.other_devices
        assert found.detail == other
        assert any(
            re.fullmatch(rf" +\d+\.\d s  a different device on the port: {re.escape(other)}", x)
            for x in lines
        ), text
        assert [e.data["detail"] for e in seen if e.kind == "other_device"] == [other]
        (check,) = rec.checks
        assert check.state == "fail" and other in check.detail
