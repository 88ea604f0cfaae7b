"""`harness virtual-bench` with real processes: the firmware in simavr as a board on a pty, an
emulated SCPI supply on loopback, the supply's output on the simulator's rail. The board is
read through the harness's own serial path, the supply driven through its own SCPI driver.
Real time: about 40 s."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import trio

from harness.link import SampleReceived
from harness.link.messages import Sample
from harness.runner.session import HostSession
from harness.supplies import open_supply, parse_supply
from harness.supplies.emulated import EmulatedOutput
from harness.transports.serialport import SerialStream
from harness.virtualbench.rail import rail_command
from tests.scenario_texts import LEFT_AND_RIGHT


def test_the_rail_is_what_the_terminals_carry() -> None:
    """Constant voltage, constant current (the load wants more than the limit) and off."""
    output = EmulatedOutput(load=20.0)
    output.set_volts(4.0)
    output.set_current_limit(0.5)
    assert rail_command(output.terminals()) == "set supply=off"
    output.set_output(True)
    assert rail_command(output.terminals()) == "set volts=4.0000 amps=0.20000 supply=on"
    output.set_current_limit(0.1)
    assert rail_command(output.terminals()) == "set volts=2.0000 amps=0.10000 supply=on"


async def start_bench(*options: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`harness virtual-bench OPTIONS` and the lines it prints (two, or three with --korad)."""
    bench = subprocess.Popen(
        [sys.executable, "-m", "harness", "virtual-bench", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert bench.stdout is not None
    readline: Callable[[], str] = bench.stdout.readline
    with trio.fail_after(60):  # it builds the firmware and the sim if they are not yet
        lines = [
            await trio.to_thread.run_sync(readline) for _ in range(3 if "--korad" in options else 2)
        ]
    return bench, lines


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(x) for x in (task / "children").read_text().split()]
    return found


class Board:
    """The harness's host end on the board's pty, keeping every sample with its arrival."""

    def __init__(self, path: str) -> None:
        self.stream = SerialStream(path)
        self.samples: list[tuple[float, Sample]] = []
        self.session = HostSession(self.stream, self._on_event)

    def _on_event(self, e: object) -> None:
        if isinstance(e, SampleReceived):
            self.samples.append((trio.current_time(), e.sample))

    async def settled(self, since: float) -> Sample:
        """The first sample whose whole interval (250 ms) came after `since`."""
        with trio.fail_after(5):
            while True:
                late = [s for t, s in self.samples if t > since + 0.3]
                if late:
                    return late[0]
                await trio.sleep(0.05)


async def test_a_scpi_setting_reaches_the_firmware_through_the_simulated_rail() -> None:
    bench, (board_line, supply_line) = await start_bench("--load-ohms", "20")
    try:
        (sim,) = children(bench.pid)
        assert "powerhil-sim" in Path(f"/proc/{sim}/cmdline").read_text()
        kind, path = board_line.split()
        assert kind == "board" and path.startswith("/dev/pts/")
        kind, spec = supply_line.split()
        assert kind == "supply" and spec.startswith("scpi:TCPIP::127.0.0.1::")
        board = Board(path)
        async with open_supply(parse_supply(spec)) as supply, trio.open_nursery() as nursery:
            nursery.start_soon(board.session.run)
            board.session.send_command("set_interval", {"value": 250})
            off = await board.settled(trio.current_time())
            assert off.v == 0.0 and off.a == 0.0  # the rail is off until the output is on
            await supply.set_current_limit(0.5)
            await supply.set_volts(4.0)
            await supply.output(True)
            on = await board.settled(trio.current_time())
            assert abs(on.v - 4.0) < 0.01 and abs(on.a - 0.2) < 0.002
            await supply.set_current_limit(0.1)  # 4 V into 20 ohm wants 0.2 A: CC at 2 V
            limited = await board.settled(trio.current_time())
            assert abs(limited.v - 2.0) < 0.01 and abs(limited.a - 0.1) < 0.002
            await supply.output(False)
            dark = await board.settled(trio.current_time())
            assert dark.v < 0.01 and dark.a == 0.0
            nursery.cancel_scope.cancel()
        await board.stream.aclose()
    finally:
        bench.send_signal(signal.SIGINT)
        code = await trio.to_thread.run_sync(bench.wait, 10)
    assert code == 0
    assert not Path(f"/proc/{sim}").exists()  # the simulator was stopped and reaped
    assert bench.stderr is not None and "virtual bench stopped" in bench.stderr.read()


async def test_the_korad_and_the_scpi_front_ends_drive_one_output() -> None:
    """With --korad the same emulated supply is also a Korad on a pty: a setting through one is
    read back through the other."""
    bench, lines = await start_bench("--korad")
    try:
        specs = [x.split()[1] for x in lines[1:]]
        assert specs[0].startswith("scpi:") and specs[1].startswith("korad:/dev/pts/")
        async with (
            open_supply(parse_supply(specs[0])) as scpi,
            open_supply(parse_supply(specs[1])) as korad,
        ):
            await korad.set_current_limit(0.5)
            await korad.set_volts(3.3)
            await korad.output(True)
            readback = await scpi.measure()
            assert readback is not None
            assert abs(readback.volts - 3.3) < 1e-6 and abs(readback.amps - 0.165) < 1e-6
    finally:
        bench.send_signal(signal.SIGTERM)
        code = await trio.to_thread.run_sync(bench.wait, 10)
    assert code == 0


async def test_a_simulator_that_dies_is_one_line_and_exit_2() -> None:
    bench, _ = await start_bench()
    (sim,) = children(bench.pid)
    os.kill(sim, signal.SIGKILL)
    code = await trio.to_thread.run_sync(bench.wait, 10)
    assert bench.stderr is not None
    last = bench.stderr.read().splitlines()[-1]
    assert code == 2 and last.startswith("the sim runner exited with status -9")


async def test_brownout_passes_on_the_virtual_bench_with_the_scpi_supply(tmp_path: Path) -> None:
    """The headline scenario on the real path: the firmware on a pty as a board, its rail
    fed by the SCPI emulator driven by the scpi driver along the profile. It passes, the record
    holds the supply's settings with their times and its readback, and the output is off at
    the end (the board then reads 0 V)."""
    bench, (board_line, supply_line) = await start_bench()
    record = tmp_path / "brownout.json"
    try:
        board, supply = board_line.split()[1], supply_line.split()[1]
        run = await trio.run_process(
            [
                *(sys.executable, "-m", "harness", "run", "scenarios/brownout.toml"),
                *("--target", "board", "--serial", board, "--supply", supply),
                *("--no-view", "--db", str(tmp_path / "log.db"), "--json", str(record)),
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
        async with open_supply(parse_supply(supply)) as scpi:
            after = await scpi.measure()
    finally:
        bench.send_signal(signal.SIGINT)
        code = await trio.to_thread.run_sync(bench.wait, 10)
    out = run.stdout.decode()
    assert run.returncode == 0, out + run.stderr.decode()
    assert "brownout: PASS" in out
    assert code == 0
    rec = json.loads(record.read_text())
    settings = rec["supply"]["settings"]
    volts = [(s["at"], s["value"]) for s in settings if s["what"] == "volts"]
    assert volts[0][1] == 5.0 and min(v for _, v in volts) == 3.0 and volts[-1][1] == 5.0
    assert all(7.9 <= at <= 8.1 for at, v in volts if v == 3.0 and at < 10)  # the sag's foot
    assert settings[-1]["what"] == "output" and settings[-1]["value"] is False
    readbacks = rec["supply"]["readbacks"]
    assert len(readbacks) >= 80  # 5 a second over 20 s
    assert min(r["volts"] for r in readbacks) == 3.0
    assert after is not None and after.volts == 0.0  # switched off when the run ended


TWO_BOARDS = (
    """\
[scenario]
name = "two boards on the bench"
duration = "8s"

"""
    + LEFT_AND_RIGHT
    + """[[supply]]
at = "3s"
volts = 3.5
[[supply]]
at = "5s"
volts = 5.0

[[expect]]
name = "sags"
measure = "v"
stat = "min"
over = ["2s", "6s"]
below = 4.0

[[expect]]
link = { lost = 0, duplicated = 0, commands_failed = 0 }
"""
)


async def test_two_boards_each_on_its_own_supply_pass_one_scenario(tmp_path: Path) -> None:
    """The real path twice over: two firmware boards on their ptys, each fed by its own SCPI
    supply, named on the command line (`--serial NAME=PATH`, `--supply NAME=...`); one link
    loses a fifth of its frames. Each device sags, loses nothing, and the log holds each
    one's samples once."""
    scenario = tmp_path / "two.toml"
    scenario.write_text(TWO_BOARDS)
    benches = [await start_bench(), await start_bench()]
    record, db = tmp_path / "two.json", tmp_path / "log.db"
    try:
        flags: list[str] = []
        for name, (_, (board_line, supply_line)) in zip(("left", "right"), benches, strict=True):
            flags += ["--serial", f"{name}={board_line.split()[1]}"]
            flags += ["--supply", f"{name}={supply_line.split()[1]}"]
        run = await trio.run_process(
            [
                *(sys.executable, "-m", "harness", "run", str(scenario), "--target", "board"),
                *flags,
                *("--no-view", "--db", str(db), "--json", str(record)),
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        for bench, _ in benches:
            bench.send_signal(signal.SIGINT)
        for bench, _ in benches:
            await trio.to_thread.run_sync(bench.wait, 10)
    out = run.stdout.decode()
    assert run.returncode == 0, out + run.stderr.decode()
    assert "PASS  left: sags" in out and "PASS  right: sags" in out
    rec = json.loads(record.read_text())
    sections = {d["name"]: d for d in rec["devices"]}
    assert [d["target"] for d in sections.values()] == ["board", "board"]
    assert sections["right"]["injected"]["drop"] > 0 and not sections["left"]["injected"]
    assert all(d["supply"]["settings"] for d in sections.values())  # each drove its own
    rows = sqlite3.connect(db).execute(
        "SELECT device, count(*), count(DISTINCT boot || '-' || seq) FROM samples GROUP BY device"
    )
    stored = {device: (n, distinct) for device, n, distinct in rows}
    for name, d in sections.items():
        assert (
            stored[name] == (d["link"]["delivered"],) * 2 and d["link"]["delivered"] >= 7
        )  # 1 a second


async def test_monitor_logs_two_boards_each_with_its_own_supply(tmp_path: Path) -> None:
    """`harness monitor` with a port and a supply named for each device: both boards' samples
    and both supplies' readbacks are logged under their names, each supply at --volts; Ctrl-C
    stops it (exit 0) and switches both outputs off."""
    benches = [await start_bench(), await start_bench()]
    db = tmp_path / "log.db"
    supplies: list[str] = []
    try:
        flags: list[str] = []
        for name, (_, (board_line, supply_line)) in zip(("left", "right"), benches, strict=True):
            supplies.append(supply_line.split()[1])
            flags += ["--serial", f"{name}={board_line.split()[1]}"]
            flags += ["--supply", f"{name}={supplies[-1]}"]
        monitor = subprocess.Popen(
            [
                *(sys.executable, "-m", "harness", "monitor", *flags),
                *("--volts", "4.5", "--no-view", "--db", str(db)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[1],
        )

        def logged() -> set[str]:
            if not db.exists():
                return set()
            with contextlib.closing(sqlite3.connect(db)) as conn:
                try:
                    rows = conn.execute("SELECT DISTINCT device FROM samples").fetchall()
                except sqlite3.OperationalError:  # not made yet
                    return set()
            return {device for (device,) in rows}

        with trio.fail_after(30):
            while logged() != {"left", "right"}:
                await trio.sleep(0.2)
        await trio.sleep(1.0)
        monitor.send_signal(signal.SIGINT)
        code = await trio.to_thread.run_sync(monitor.wait, 20)
        after = []
        for resource in supplies:
            async with open_supply(parse_supply(resource)) as scpi:
                after.append(await scpi.measure())
    finally:
        for bench, _ in benches:
            bench.send_signal(signal.SIGINT)
        for bench, _ in benches:
            await trio.to_thread.run_sync(bench.wait, 10)
    assert monitor.stderr is not None
    assert code == 0, monitor.stderr.read().decode()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT device, max(volts) FROM readbacks GROUP BY device").fetchall()
    assert dict(rows) == {"left": 4.5, "right": 4.5}
    assert [r.volts for r in after] == [0.0, 0.0]  # each output off when it stopped
