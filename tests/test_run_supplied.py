"""A run that drives a bench supply: the composition's refusals, the supply's settings and
readback on the bus and in the record, the manual supply, and the order of the end. In this
process, in real time: the mock device on a pty as the board, the SCPI emulator on loopback."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio

from harness.cli import main
from harness.runner.bus import Bus, Published, RunEvent
from harness.runner.console import status_line
from harness.runner.context import RunContext, RunOptions, tap
from harness.runner.observer import Observer
from harness.runner.record import junit_xml
from harness.runner.run import RunResult, run_scenario
from harness.runner.session import HostSession
from harness.runner.supplied import SCENARIO, SuppliedTarget, choose_limits
from harness.runner.supply_log import Thinned
from harness.scenario.load import parse
from harness.scenario.model import Scenario
from harness.store.db import open_for_reading
from harness.store.export import export_run
from harness.store.recorder import recorder
from harness.supplies import Limits, parse_supply
from harness.supplies.emulated import (
    KORAD_IDN,
    SCPI_IDN,
    EmulatedOutput,
    KoradInstrument,
    ScpiInstrument,
)
from harness.supplies.emulators import serve_korad, serve_scpi
from harness.targets import SupplyRead
from harness.targets.board import BoardTarget
from harness.targets.mock.device import MockDevice
from harness.transports.memory import memory_stream_pair
from harness.transports.pty import Pty

DIP = """\
[scenario]
name = "dip"
duration = "3s"
[[supply]]
at = "0s"
volts = 5.0
amps = 0.2
[[supply]]
at = "1s"
volts = 5.0
[[supply]]
at = "1.5s"
volts = 4.0
[[supply]]
at = "2s"
volts = 5.0
[[expect]]
measure = "v"
stat = "min"
below = 4.2
[[expect]]
agrees_with_supply = "v"
tolerance = 0.05
"""

AMPS = """\
[[expect]]
agrees_with_supply = "a"
tolerance = 0.01
"""


def dip(tmp_path: Path, text: str = DIP) -> Scenario:
    path = tmp_path / "dip.toml"
    path.write_text(text)
    return parse(text, path)


@asynccontextmanager
async def board(scenario: Scenario) -> AsyncIterator[str]:
    """The mock device on a pty, following the scenario's profile itself: a board's port."""
    pty = Pty()
    device = MockDevice(profile=scenario.supply, spec=scenario.device, seed=1)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.run, pty.stream)
            yield pty.path
            nursery.cancel_scope.cancel()
    finally:
        await pty.aclose()


async def run_with(
    scenario: Scenario, supply: str, path: str, seen: list[Published], **kw: float
) -> tuple[RunResult, str]:
    out = io.StringIO()
    choice = choose_limits(scenario, parse_supply(supply), None, None)
    target = SuppliedTarget(BoardTarget(path), scenario, choice, **kw)
    result = await run_scenario(
        scenario, RunOptions(target="board", out=out), (tap(seen.append),), target
    )
    return result, out.getvalue()


def events(seen: list[Published], kind: str) -> list[RunEvent]:
    return [e for e in seen if isinstance(e, RunEvent) and e.kind == kind]


async def test_a_run_drives_the_scpi_emulator_and_records_it(tmp_path: Path) -> None:
    scenario = dip(tmp_path)
    states: list[tuple[float, float, bool]] = []
    output = EmulatedOutput(load=25.0, on_output=lambda v, a, on: states.append((v, a, on)))
    seen: list[Published] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(output))
        async with board(scenario) as path:
            result, out = await run_with(
                scenario, f"scpi:TCPIP::127.0.0.1::{port}::SOCKET", path, seen
            )
        nursery.cancel_scope.cancel()
    assert result.exit_code == 0, out
    (agrees,) = [e for e in result.record.expectations if e.label.startswith("v agrees")]
    assert agrees.state == "pass" and agrees.detail.endswith("V apart")
    assert states[0][1] == 0.2 and states[-1][2] is False  # the limit first, off at the end
    rec = result.record.supply
    assert rec is not None and rec.limits_from == SCENARIO and not rec.by_hand
    assert rec.identity == SCPI_IDN
    whats = [s.what for s in rec.settings]
    assert whats[:3] == ["current_limit", "volts", "output"] and whats[-1] == "output"
    volts = [s.value for s in rec.settings if s.what == "volts"]
    assert min(volts) == 4.0 and volts[-1] == 5.0
    points = {s.point: s for s in rec.settings if s.point is not None}
    assert points[3].value == 4.0 and abs(points[3].due - 1.5) < 1e-3
    assert points[3].at >= points[3].due and points[3].latency == pytest.approx(
        points[3].at - (points[3].at - points[3].latency)
    )
    assert rec.settings_total == len(rec.settings) and rec.settings_skipped == 0
    assert rec.latency_max is not None and rec.latency_median is not None
    assert rec.latency_median <= rec.latency_max
    assert rec.readbacks_total == len(rec.readbacks) > 5 and rec.readback_every == 1
    assert min(r.volts for r in rec.readbacks) < 4.3  # the dip, read back
    assert all(r.amps == pytest.approx(r.volts / 25.0, abs=1e-3) for r in rec.readbacks)
    # On the bus, in scenario seconds, as every other event:
    settings = events(seen, "supply")
    assert settings[0].data["what"] == "opened" and settings[0].data["identity"] == rec.identity
    assert [e.data["what"] for e in settings[1:]] == whats
    off = settings[-1]
    run_end = events(seen, "run")[-1]
    assert off.data == {**off.data, "what": "output", "value": False}
    assert off.at <= run_end.at  # off before the run's end is recorded
    readbacks = events(seen, "readback")
    assert len(readbacks) == rec.readbacks_total and 0 < readbacks[0].at < 3.5
    # The console: who and which limits, one line each, and the points reached.
    assert "limits the profile's own maxima (no bench limits)" in out
    assert "supply 4 V (supply[3])" in out and "supply output off" in out
    record = json.loads(json.dumps(result.record.as_dict(), default=str))
    assert set(record["supply"]) >= {
        "name", "identity", "limits", "limits_from", "by_hand", "settings", "settings_total",
        "settings_skipped", "latency_max", "latency_median", "readbacks", "readbacks_total",
    }  # fmt: skip
    props = {
        p.get("name"): p.get("value")
        for p in ET.fromstring(junit_xml(result.record)).iter("property")
    }
    assert (
        props["supply"].startswith("scpi:TCPIP::127.0.0.1") and props["supply_by_hand"] == "false"
    )


async def test_a_manual_supply_tells_the_person_and_is_marked_applied_by_hand(
    tmp_path: Path,
) -> None:
    scenario = dip(tmp_path)
    seen: list[Published] = []
    async with board(scenario) as path:
        result, out = await run_with(scenario, "manual", path, seen)
    rec = result.record.supply
    assert rec is not None and rec.by_hand and rec.readbacks_total == 0
    said = [e.data["text"] for e in events(seen, "announcement")]
    assert "set the supply to 4.00 V now" in said
    assert any(t.startswith("in ") and t.endswith("set the supply to 4.00 V") for t in said)
    assert "switch the output off now" in said
    assert "set the supply to 4.00 V now" in out and "(applied by hand)" in out
    assert "supply 4 V" not in out  # the announcement says it; no second line
    (agrees,) = [e for e in result.record.expectations if e.label.startswith("v agrees")]
    assert agrees.state == "fail" and "no supply readback to compare" in agrees.detail
    assert result.exit_code == 1, out


async def test_a_monitor_that_disagrees_with_the_supply_fails(tmp_path: Path) -> None:
    """The supply's load draws V/25 ohm (0.16 A at the 4 V dip); the device's rail, the
    profile's 0.2 A throughout: the monitor's amps disagree with the readback."""
    scenario = dip(tmp_path, DIP + AMPS)
    output = EmulatedOutput(load=25.0)
    seen: list[Published] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(output))
        async with board(scenario) as path:
            result, _ = await run_with(
                scenario, f"scpi:TCPIP::127.0.0.1::{port}::SOCKET", path, seen
            )
        nursery.cancel_scope.cancel()
    (agrees,) = [e for e in result.record.expectations if e.label.startswith("a agrees")]
    assert agrees.state == "fail" and "the supply read 0.1" in agrees.detail, agrees
    assert result.exit_code == 1


async def test_the_output_goes_off_when_the_run_is_cancelled(tmp_path: Path) -> None:
    """The run's nursery cancelled from outside (as an error elsewhere does): follow's end
    still switches the output off."""
    scenario = dip(tmp_path)
    output = EmulatedOutput(load=25.0)
    seen: list[Published] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(output))
        async with board(scenario) as path:
            with trio.move_on_after(1.0):
                await run_with(scenario, f"scpi:TCPIP::127.0.0.1::{port}::SOCKET", path, seen)
        nursery.cancel_scope.cancel()
    assert output.on is False
    assert events(seen, "supply")[-1].data["value"] is False


def test_a_bench_files_limits_refuse_the_profile_before_anything(tmp_path: Path) -> None:
    scenario = dip(tmp_path)
    limits = Limits(max_volts=5.0, max_amps=0.5, max_slew=1.0)
    with pytest.raises(Exception) as refused:
        choose_limits(scenario, parse_supply("manual"), limits, "bench.toml")
    assert str(refused.value).startswith("dip.toml: supply[3] at 1.5s: the ramp from 5 V to 4 V")
    assert "max_slew 1 V/s" in str(refused.value)
    ok = choose_limits(scenario, parse_supply("manual"), Limits(6.0, 0.5), "bench.toml")
    assert ok.limits_from == "bench.toml"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--supply", "manual"],
            "--supply: the mock target drives the rail itself from the profile; a bench "
            "supply feeds a real board (--target board)",
        ),
        (
            ["--target", "sim", "--supply", "manual"],
            "--supply: the sim target drives the rail itself",
        ),
        (["--target", "board", "--supply", "psu:x"], '--supply psu:x: unknown supply driver "psu"'),
        (
            ["--target", "board", "--supply", "manual", "--bench", "b.toml"],
            "argument --bench: not allowed with argument --supply",
        ),
        (["--target", "board", "--bench", "nowhere.toml"], "nowhere.toml: no such bench file"),
    ],
)
def test_what_the_command_line_refuses_in_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["run", "brownout", "--no-view", "--db", str(tmp_path / "h.db"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "h.db").exists()


def test_a_supply_that_does_not_answer_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(
        [
            *("run", "brownout", "--target", "board", "--serial", "/dev/null", "--no-view"),
            *("--db", str(tmp_path / "h.db")),
            *("--supply", f"scpi:TCPIP::127.0.0.1::{port}::SOCKET"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"TCPIP::127.0.0.1::{port}::SOCKET" in err[0], err


async def test_a_board_without_a_supply_says_its_profile_is_not_driven(tmp_path: Path) -> None:
    scenario = dip(tmp_path)
    out = io.StringIO()
    async with board(scenario) as path:
        with trio.move_on_after(0.5):
            await run_scenario(scenario, RunOptions(target="board", out=out), (), BoardTarget(path))
    first = out.getvalue().splitlines()[1]
    assert first == (
        "dip.toml: its [[supply]] profile is not driven on the board: the bench must follow it "
        "(give --supply DRIVER:RESOURCE or --bench FILE, or --supply manual to be told when "
        "to set it)"
    )


def test_a_long_runs_readbacks_are_thinned_evenly() -> None:
    kept: Thinned[int] = Thinned(limit=8)
    for i in range(100):
        kept.add(i)
    assert kept.seen == 100 and len(kept.items) < 8
    steps = {b - a for a, b in zip(kept.items, kept.items[1:], strict=False)}
    assert steps == {kept.every} and kept.items[0] == 0 and kept.items[-1] > 100 - 2 * kept.every
    assert math.isfinite(kept.every)


async def test_the_log_keeps_settings_as_events_readbacks_apart_and_export_puts_them_beside(
    tmp_path: Path,
) -> None:
    scenario = dip(tmp_path)
    output = EmulatedOutput(load=25.0)
    db = tmp_path / "h.db"
    out = io.StringIO()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(output))
        async with board(scenario) as path:
            choice = choose_limits(
                scenario, parse_supply(f"scpi:TCPIP::127.0.0.1::{port}::SOCKET"), None, None
            )
            target = SuppliedTarget(BoardTarget(path), scenario, choice)
            result = await run_scenario(
                scenario, RunOptions(target="board", out=out), (recorder(db),), target
            )
        nursery.cancel_scope.cancel()
    rec = result.record.supply
    assert rec is not None
    conn = open_for_reading(db)
    kinds = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    assert kinds["supply"] == rec.settings_total + 1  # and its opening
    assert "readback" not in kinds
    (stored,) = conn.execute("SELECT count(*) FROM readbacks WHERE run = 1").fetchone()
    assert stored == rec.readbacks_total
    csv_out = io.StringIO()
    export_run(conn, 1, csv_out)
    rows = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    beside = [r for r in rows if r["supply_v"]]
    assert len(beside) >= len(rows) - 1 > 0  # every sample while the output was on
    for r in beside:
        assert float(r["vmin"]) - 0.05 <= float(r["supply_v"]) <= float(r["vmax"]) + 0.05
        assert float(r["supply_a"]) == pytest.approx(float(r["supply_v"]) / 25.0, abs=1e-3)


def test_a_supply_lost_mid_run_ends_it_in_one_line_and_says_the_output_is_left_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The supply stops answering 1 s in: the run ends (exit 2) with one line that says so
    and that the output could not be switched off; the log keeps the run."""
    scenario_path = tmp_path / "dip.toml"
    scenario_path.write_text(DIP)

    async def serve_a_while(task_status: trio.TaskStatus[int]) -> None:
        with trio.move_on_after(1.0):
            async with trio.open_nursery() as nursery:
                task_status.started(
                    await nursery.start(serve_scpi, ScpiInstrument(EmulatedOutput()))
                )

    async def main_with_a_failing_supply() -> int:
        scenario = dip(tmp_path)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_a_while)
            async with board(scenario) as path:
                code = await trio.to_thread.run_sync(
                    main,
                    [
                        *("run", str(scenario_path), "--target", "board", "--serial", path),
                        *("--supply", f"scpi:TCPIP::127.0.0.1::{port}::SOCKET", "--no-view"),
                        *("--db", str(tmp_path / "h.db")),
                    ],
                )
            nursery.cancel_scope.cancel()
        return code

    assert trio.run(main_with_a_failing_supply) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "the output could not be switched off at the end" in err[0]
    assert "switch it off by hand" in err[0]
    conn = open_for_reading(tmp_path / "h.db")
    assert conn.execute("SELECT verdict FROM runs").fetchall() == [("error",)]
    assert conn.execute("SELECT count(*) FROM readbacks").fetchone()[0] > 0


async def test_a_run_drives_the_korad_emulator_at_its_own_pace(tmp_path: Path) -> None:
    """(No agreement expected here: the mock's rail follows the profile itself, on time, while
    the Korad's steps lag it by their pacing.)"""
    scenario = dip(tmp_path, DIP[: DIP.index("[[expect]]\nagrees_with_supply")])
    output = EmulatedOutput(load=25.0)
    seen: list[Published] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_korad, KoradInstrument(output))
        async with board(scenario) as path:
            result, out = await run_with(scenario, f"korad:{port}", path, seen)
        nursery.cancel_scope.cancel()
    assert result.exit_code == 0, out
    rec = result.record.supply
    assert rec is not None and rec.identity == KORAD_IDN
    ramp = [s for s in rec.settings if s.what == "volts" and 1.0 < s.due < 2.0]
    assert 0 < len(ramp) <= 5  # 5 settings a second at most along the ramp (0.5 s down, up)
    assert rec.settings[-1].what == "output" and output.on is False
    assert rec.readbacks_total > 0


async def test_the_status_line_shows_the_supplys_readback() -> None:
    scenario = parse(DIP, Path("dip.toml"))
    obs = Observer(scenario, 0.0, Bus())
    obs.on_target(SupplyRead(1.0, 4.9876, 0.19951))
    link = HostSession(memory_stream_pair()[0], lambda e: None)
    assert "supply  4.988 V  0.1995 A" in status_line(obs, link, 1.0, 3.0)


@asynccontextmanager
async def _sigint_at(ctx: RunContext, seconds: float) -> AsyncIterator[None]:
    async def later() -> None:
        await trio.sleep_until(ctx.origin + seconds)
        os.kill(os.getpid(), signal.SIGINT)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        yield
        nursery.cancel_scope.cancel()


async def test_ctrl_c_switches_the_output_off_at_once_not_after_the_drain(tmp_path: Path) -> None:
    scenario = dip(tmp_path)
    output = EmulatedOutput(load=25.0)
    seen: list[Published] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(output))
        async with board(scenario) as path:
            choice = choose_limits(
                scenario, parse_supply(f"scpi:TCPIP::127.0.0.1::{port}::SOCKET"), None, None
            )
            target = SuppliedTarget(BoardTarget(path), scenario, choice)
            result = await run_scenario(
                scenario,
                RunOptions(target="board", out=io.StringIO()),
                (tap(seen.append), partial(_sigint_at, seconds=1.2)),
                target,
            )
        nursery.cancel_scope.cancel()
    assert result.exit_code == 130 and result.record.verdict == "interrupted"
    off = events(seen, "supply")[-1]
    assert off.data["what"] == "output" and off.data["value"] is False
    assert 1.2 <= off.at < 1.5  # at the stop, not after the drain
    volts = [e.data["value"] for e in events(seen, "supply") if e.data["what"] == "volts"]
    assert min(volts) > 4.5  # the ramp stopped at the stop: the dip (4 V at 1.5 s) never came
    assert output.on is False


@pytest.mark.parametrize(
    ("shared", "safe_volts", "unpowered"),
    [(False, None, False), (True, None, True), (True, 1.0, True), (True, 3.3, False)],
)
def test_a_stopped_bench_leaves_a_board_on_its_rail_unpowered_unless_kept_safe(
    tmp_path: Path, shared: bool, safe_volts: float | None, unpowered: bool
) -> None:
    """Ctrl-C takes the output off (or to safe_volts) at once: a board whose MCU the rail feeds
    then has nothing left to send, so the run does not wait for it to drain (nor calls it
    silent); a board apart from the rail, or kept above its brown-out level, drains."""
    text = DIP.replace(
        'duration = "3s"', f'duration = "3s"\n[device]\nshared_rail = {str(shared).lower()}'
    )
    scenario = dip(tmp_path, text)
    choice = choose_limits(
        scenario, parse_supply("manual"), Limits(6.0, 0.5, safe_volts=safe_volts), "b.toml"
    )
    target = SuppliedTarget(BoardTarget("/dev/null"), scenario, choice)
    assert target.stop() is unpowered
