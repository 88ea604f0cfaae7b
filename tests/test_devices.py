"""Several devices in one run (`[[device]]`): each has its own link, relay, observer and
steps, the store keeps each one's samples once, the record has a section per device, and one
device whose link ends does not stop the others."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from harness.cli import main
from harness.errors import UserError
from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.device_flags import split_named
from harness.scenario.load import parse
from harness.targets.base import OnTargetEvent
from harness.targets.mock import MockTarget
from harness.transports.memory import memory_stream_pair
from tests.scenario_texts import TWO_DEVICES


def write(tmp_path: Path, text: str, name: str = "two.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_two_devices_one_at_20_percent_drop_pass_with_each_device_in_the_store_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's bar: one healthy link, one at 20 % drop, on the mock with --fast."""
    path, db, out = write(tmp_path, TWO_DEVICES), tmp_path / "log.db", tmp_path / "r.json"
    code = main(["run", str(path), "--fast", "--no-view", "--db", str(db), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "two boards: PASS" in printed
    assert "PASS  right: rail holds" in printed and "PASS  left: rail holds" in printed
    rec = json.loads(out.read_text())
    sections = {d["name"]: d for d in rec["devices"]}
    assert list(sections) == ["left", "right"]
    assert sections["left"]["injected"] == {}  # the clean link's relay injected nothing
    assert sections["right"]["injected"]["drop"] > 0
    assert all(d["verdict"] == "pass" and d["link"]["lost"] == 0 for d in sections.values())
    assert all(d["link"]["duplicated"] == 0 for d in sections.values())
    conn = sqlite3.connect(db)
    stored = {
        device: (rows, distinct)
        for device, rows, distinct in conn.execute(
            "SELECT device, count(*), count(DISTINCT boot || '-' || seq) FROM samples "
            "GROUP BY device"
        )
    }
    for name, section in sections.items():
        assert stored[name] == (section["link"]["delivered"], section["link"]["delivered"])
    assert {n for (n,) in conn.execute("SELECT name FROM devices WHERE run = 1")} == {
        "left",
        "right",
    }
    # each got its command once: the step went to each device
    assert [c["device"] for c in rec["commands"]] == ["left", "right"]
    assert rec["link"]["delivered"] == sum(d["link"]["delivered"] for d in sections.values())


FAILS_ON_RIGHT = TWO_DEVICES.replace(
    'name = "rail holds"', 'name = "rail holds"\ndevice = "right"'
).replace("above = 4.9", "above = 5.5")


async def test_an_expectation_for_one_device_judges_it_alone_and_the_verdict_names_it(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    out = io.StringIO()
    sc = parse(FAILS_ON_RIGHT, tmp_path / "f.toml")
    result = await run_scenario(sc, RunOptions(fast=True, out=out))
    rec = result.record
    assert result.exit_code == 1 and rec.verdict == "fail"
    assert [d.verdict for d in rec.devices] == ["pass", "fail"]
    assert [e.label for e in rec.devices[0].expectations if "rail" in e.label] == []
    assert "FAIL  right: rail holds" in out.getvalue()


class EndsAt:
    """A mock whose stream ends at `at` scenario seconds, as a board pulled out would."""

    def __init__(self, inner: MockTarget, at: float) -> None:
        self.inner, self.at = inner, at
        self.name, self.capabilities, self.truth = inner.name, inner.capabilities, inner.truth

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        inner = await self.inner.start(nursery, origin, on_event)
        device_end, harness_end = memory_stream_pair()

        async def pump(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
            while data := await source.receive_some():
                await sink.send_all(data)

        async def carry_then_pull_out() -> None:
            with trio.move_on_at(origin + self.at):
                async with trio.open_nursery() as both:
                    both.start_soon(pump, inner, device_end)
                    both.start_soon(pump, device_end, inner)
            await device_end.aclose()  # the harness reads the end of its stream

        nursery.start_soon(carry_then_pull_out)
        return harness_end

    async def reset(self) -> None:
        await self.inner.reset()

    def set_line_rate(self, rate: float | None) -> None:
        self.inner.set_line_rate(rate)

    def describe(self) -> str:
        return "mock that is pulled out"

    def stop(self) -> bool:
        return False

    async def why_it_ended(self) -> str | None:
        return f"pulled out at {self.at:g} s"


async def test_one_device_whose_link_ends_does_not_stop_the_others(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sc = parse(TWO_DEVICES, tmp_path / "two.toml")
    left, right = (sc.for_device(n) for n in sc.names)
    targets = {
        "left": MockTarget(left, 3),
        "right": EndsAt(MockTarget(right, 4), at=5.0),
    }
    samples: dict[str, list[float]] = {"left": [], "right": []}

    def take(item: object) -> None:
        from harness.runner.bus import SampleEvent

        if isinstance(item, SampleEvent):
            samples[item.device].append(item.end)

    from harness.runner.context import tap

    out = io.StringIO()
    result = await run_scenario(sc, RunOptions(fast=True, out=out), (tap(take),), targets)
    rec = result.record
    assert rec.verdict == "error" and result.exit_code == 2
    assert rec.error == "right: pulled out at 5 s"
    said = [line for line in out.getvalue().splitlines() if "its link ended" in line]
    assert said == ["     5.0 s  right: its link ended: pulled out at 5 s; the other devices go on"]
    assert [(d.name, d.verdict) for d in rec.devices] == [("left", "pass"), ("right", "error")]
    assert max(samples["right"]) < 5.5
    assert max(samples["left"]) > 19.0  # logged to the scenario's end


async def test_a_step_naming_a_device_acts_on_it_alone(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    text = TWO_DEVICES.replace(
        'send = { cmd = "set_interval", value = 200 }',
        'send = { cmd = "set_interval", value = 200 }\ndevice = "left"',
    )
    rec = (await run_scenario(parse(text, tmp_path / "s.toml"), RunOptions(fast=True))).record
    left, right = rec.devices
    assert [c.name for c in left.commands] == ["set_interval"] and right.commands == []
    assert left.link.delivered > 3 * right.link.delivered  # 5 a second against 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('name = "right"', 'name = "left"'),
            'two.toml:10: device[2].name: another [[device]] is called "left" already',
        ),
        (('name = "right"\n', ""), 'two.toml:9: device[2]: missing "name"'),
        (('name = "right"', 'name = "r ight"'), "device[2].name"),
        (
            ('ack_within = "2s"', 'ack_within = "2s"\ndevice = "rihgt"'),
            'step[1].device: no [[device]] is called "rihgt" (did you mean "right"?)',
        ),
        (
            ("above = 4.9", 'above = 4.9\ndevice = "middle"'),
            'expect[2].device: no [[device]] is called "middle"',
        ),
        (('name = "right"', 'name = "right"\nserial = "/dev/ttyACM0"\ntarget = "mock"'), "serial"),
    ],
)
def test_a_bad_device_entry_is_one_line_naming_its_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(UserError) as err:
        parse(TWO_DEVICES.replace(*change), tmp_path / "two.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_serial_and_supply_flags_name_their_device() -> None:
    names = ("left", "right")
    assert split_named(["left=/dev/a", "right=/dev/b"], names, "--serial", "PATH") == (
        None,
        {"left": "/dev/a", "right": "/dev/b"},
    )
    assert split_named(["/dev/a"], ("dut",), "--serial", "PATH") == ("/dev/a", {})
    for values, said in (
        (["/dev/a"], "the scenario has 2 devices; name the one it is for"),
        (["middle=/dev/a"], "no device is called middle"),
        (["left=/dev/a", "left=/dev/b"], "left has --serial /dev/a already"),
    ):
        with pytest.raises(UserError, match=said):
            split_named(values, names, "--serial", "PATH")


def test_a_plain_serial_for_a_scenario_of_two_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, TWO_DEVICES)
    code = main(["run", str(path), "--target", "board", "--serial", "/dev/ttyACM0", "--no-view"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "--serial /dev/ttyACM0: the scenario has 2 devices; name the one it is for: "
        "--serial NAME=PATH (left, right)"
    )


def test_a_link_step_changes_each_device_s_faults_from_its_own(tmp_path: Path) -> None:
    """right starts with its own drop; a link step for each adds corruption to both, one for
    left alone adds garbage to left alone; a step without `at` follows its own device's."""
    text = TWO_DEVICES.replace(
        "[[expect]]\nlink = { lost = 0, duplicated = 0, commands_failed = 0 }",
        """[[step]]
at = "2s"
link = { corrupt = 0.01 }

[[step]]
at = "3s"
device = "left"
link = { garbage = 0.3 }

[[step]]
device = "right"
wait = "10s"

[[step]]
device = "left"
send = { cmd = "ping" }

[[expect]]
link = { lost = 0, duplicated = 0, commands_failed = 0 }""",
    )
    sc = parse(text, tmp_path / "s.toml")
    last = {}
    for name in sc.names:
        links = [s.action.faults.to_host for s in sc.for_device(name).steps if "link" in s.name]
        last[name] = links[-1]
    assert (last["left"].drop, last["left"].corrupt, last["left"].garbage) == (0.0, 0.01, 0.3)
    assert (last["right"].drop, last["right"].corrupt, last["right"].garbage) == (0.2, 0.01, 0.0)
    (ping,) = [s for s in sc.steps if s.name == "ping"]
    assert ping.at == 3.0  # after left's own last step, not after right's wait


def test_a_single_device_entry_runs_on_its_own_link(tmp_path: Path) -> None:
    one = '[scenario]\nname = "one"\nduration = "5s"\n[[device]]\nname = "solo"\n'
    sc = parse(one + "link = { drop = 0.3 }\n", tmp_path / "one.toml")
    assert sc.names == ("solo",) and sc.for_device("solo").link.to_host.drop == 0.3


def test_each_device_needs_only_what_its_own_part_does(tmp_path: Path) -> None:
    text = TWO_DEVICES.replace(
        '[[device]]\nname = "right"', '[[device]]\nname = "right"\nshared_rail = true'
    )
    text += '\n[[step]]\nat = "5s"\ndevice = "right"\nreset = true\n'
    sc = parse(text, tmp_path / "s.toml")
    assert set(sc.for_device("right").needs) == {"reset", "brownout"}
    assert sc.for_device("left").needs == ()


def test_the_first_device_keeps_the_run_s_seed_whatever_it_is() -> None:
    from harness.runner.run import device_seed

    assert [device_seed(-5, 0), device_seed(2**63 + 1, 0)] == [-5, 2**63 + 1]
    assert device_seed(7, 1) == 8


def test_a_plain_serial_beside_named_ones_is_refused() -> None:
    with pytest.raises(UserError, match="name the device of each"):
        split_named(["/dev/a", "b=/dev/b"], None, "--serial", "PATH")


@pytest.mark.parametrize(
    ("serials", "said"),
    [
        (["left=/dev/x"], "right: a board of several is known by its port"),
        (["left=/dev/x", "right=/dev/x"], "--serial: left and right both name /dev/x"),
    ],
)
def test_several_boards_each_name_their_own_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serials: list[str], said: str
) -> None:
    path = write(tmp_path, TWO_DEVICES)
    flags = [x for s in serials for x in ("--serial", s)]
    assert main(["run", str(path), "--target", "board", *flags, "--no-view"]) == 2
    assert capsys.readouterr().err.strip().startswith(said)


def test_a_board_of_several_that_cannot_open_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, TWO_DEVICES)
    flags = ["--serial", f"left={tmp_path}/none", "--serial", f"right={tmp_path}/gone"]
    assert main(["run", str(path), "--target", "board", *flags, "--no-view"]) == 2
    assert capsys.readouterr().err.strip().startswith(f"left: {tmp_path}/none: no such serial port")


def test_an_expectation_of_each_on_one_device_s_step_is_refused_naming_it(tmp_path: Path) -> None:
    text = TWO_DEVICES.replace(
        'send = { cmd = "set_interval", value = 200 }',
        'send = { cmd = "set_interval", value = 200 }\nname = "slow"\ndevice = "left"',
    ).replace("above = 4.9", 'above = 4.9\nover = ["step slow", "end"]')
    with pytest.raises(UserError, match=r'no step named "slow".*\(judging right: '):
        parse(text, tmp_path / "s.toml")


def test_only_a_line_that_paces_itself_and_never_gets_a_fault_skips_the_relay(
    tmp_path: Path,
) -> None:
    """A board whose link is clean throughout is read directly (the monitor of many boards);
    a fault at any point, a rate limit, an outage, or the mock's in-process line keep the
    relay."""
    from harness.runner.monitor import monitor_scenario
    from harness.runner.run import needs_relay

    class Board:
        name = "board"

    board: Any = Board()
    mock: Any = MockTarget(monitor_scenario(), 0)
    sc = parse(TWO_DEVICES, tmp_path / "two.toml")
    assert not needs_relay(monitor_scenario(), board)
    assert needs_relay(monitor_scenario(), mock)
    assert not needs_relay(sc.for_device("left"), board)
    assert needs_relay(sc.for_device("right"), board)  # its 20 % drop
    later = TWO_DEVICES + '\n[[step]]\nat = "5s"\ndevice = "left"\noutage = "1s"\n'
    assert needs_relay(parse(later, tmp_path / "o.toml").for_device("left"), board)


class BreaksWhenSending(trio.abc.Stream):
    """A stream whose writes fail after `after` seconds (a port that went away)."""

    def __init__(self, inner: trio.abc.Stream, after: float) -> None:
        self.inner, self.after, self.dead = inner, after, False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.dead:
            await trio.sleep_forever()
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if trio.current_time() > self.after:
            self.dead = True
            raise trio.BrokenResourceError("EIO")
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await self.inner.aclose()


class DiesAsASim(MockTarget):
    """The mock on a line of its own (as the sim is, so the run reads it without a relay)
    whose stream breaks at 1.5 s, and which knows why it ended."""

    name = "sim"

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        return BreaksWhenSending(await super().start(nursery, origin, on_event), origin + 1.5)

    async def why_it_ended(self) -> str | None:
        return "the sim runner exited with status -11"


async def test_a_device_read_without_a_relay_whose_stream_breaks_says_why_its_target_ended(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    text = '[scenario]\nname = "t"\nduration = "5s"\n'
    text += '[[step]]\nat = "2s"\nsend = { cmd = "set_interval", value = 200 }\n'
    sc = parse(text, tmp_path / "t.toml")
    out = io.StringIO()
    result = await run_scenario(sc, RunOptions(fast=True, out=out), (), DiesAsASim(sc, 0))
    assert result.record.verdict == "error" and result.exit_code == 2
    assert result.record.error == "the sim runner exited with status -11"
    # a run of one device: nothing to say of others
    assert "its link ended: the sim runner exited with status -11\n" in out.getvalue()
