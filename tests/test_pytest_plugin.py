"""The pytest plugin as a user meets it: `pytest` in a folder of scenario files and Python tests
(pytester runs it in this process, in a folder of its own with no ini file)."""

from __future__ import annotations

import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio

import harness.runner.run
import harness.scenario.load  # with harness.runner.run: see below
import harness.store.recorder
from tests.scenario_texts import FAILING, LEFT_AND_RIGHT

pytest_plugins = ["pytester"]
"""An in-process run forgets the modules it imported when it ends; the harness's are imported
here, before any, so every run shares one registry of expectation kinds."""

ROOT = Path(__file__).resolve().parent.parent


def properties(xml: Path, test: str) -> dict[str, str]:
    (case,) = [c for c in ET.parse(xml).getroot().iter("testcase") if c.get("name") == test]
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_a_folder_holding_only_brownout_passes_and_its_junit_xml_carries_the_measurements(
    pytester: pytest.Pytester,
) -> None:
    shutil.copy(ROOT / "scenarios" / "brownout.toml", pytester.path)
    result = pytester.runpytest("--powerhil-fast", "--junitxml", "j.xml")
    result.assert_outcomes(passed=1)
    props = properties(pytester.path / "j.xml", "brownout")
    assert props["powerhil.verdict"] == "pass"
    assert props["powerhil.target"] == "mock" and props["powerhil.seed"] == "7"
    assert int(props["powerhil.samples"]) > 0 and props["powerhil.lost"] == "0"
    assert 2.9 < float(props["powerhil.sag depth.measured"]) < 3.2
    assert props["powerhil.sag depth.unit"] == "V"
    assert props["powerhil.sag depth.limit"] == "< 3.2 V (marginal within 100 mV)"
    assert props["powerhil.sag depth.state"] == "pass"
    assert 0 < float(props["powerhil.sag depth.margin"]) < 0.3  # inside its 3.2 V limit
    assert props["powerhil.device kept reporting.state"] == "pass"


def test_a_scenario_built_to_fail_is_one_failure_whose_message_is_its_table_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("doomed.toml").write_text(FAILING)
    result = pytester.runpytest("--powerhil-fast", "--junitxml", "j.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED doomed.toml::doomed - *FAIL  rail sags below 4 V*"])
    (failure,) = ET.parse(pytester.path / "j.xml").getroot().iter("failure")
    message = failure.get("message", "")
    assert "FAIL  rail sags below 4 V" in message and "(limit < 4 V)" in message
    assert "no uv alert" not in message  # it held: only what failed is the message
    props = properties(pytester.path / "j.xml", "doomed")
    assert props["powerhil.verdict"] == "fail"
    assert props["powerhil.rail sags below 4 V.state"] == "fail"
    assert 4.9 < float(props["powerhil.rail sags below 4 V.measured"]) < 5.0
    assert float(props["powerhil.rail sags below 4 V.margin"]) < 0  # outside its limit


PAIR = (
    """\
[scenario]
name = "pair"
duration = "10s"
"""
    + LEFT_AND_RIGHT
    + """[[expect]]
name = "rail near 5 V"
measure = "v"
stat = "mean"
between = ["4.9 V", "5.1 V"]
[[expect]]
device = "right"
link = { lost = 0 }
"""
)
"""Two devices on a steady 5 V rail, the right one's link lossy: each holds."""


def test_a_scenario_of_two_devices_passes_with_properties_for_each(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("pair.toml").write_text(PAIR)
    result = pytester.runpytest("--powerhil-fast", "--junitxml", "j.xml")
    result.assert_outcomes(passed=1)
    props = properties(pytester.path / "j.xml", "pair")
    assert props["powerhil.verdict"] == "pass"
    for name in ("left", "right"):
        assert props[f"powerhil.{name}.verdict"] == "pass"
        assert props[f"powerhil.{name}.target"] == "mock"
        assert int(props[f"powerhil.{name}.samples"]) > 0
        assert props[f"powerhil.{name}: rail near 5 V.state"] == "pass"
        assert 4.9 < float(props[f"powerhil.{name}: rail near 5 V.measured"]) < 5.1
        assert props[f"powerhil.{name}: device kept reporting.state"] == "pass"
    samples = int(props["powerhil.left.samples"]) + int(props["powerhil.right.samples"])
    assert int(props["powerhil.samples"]) == samples  # the run's: the devices' sum
    assert props["powerhil.right: link: lost <= 0.state"] == "pass"
    assert "powerhil.left: link: lost <= 0.state" not in props  # it judges the right alone


def test_a_device_that_fails_is_named_in_the_failure(pytester: pytest.Pytester) -> None:
    doomed = PAIR.replace('name = "pair"', 'name = "pair-doomed"') + (
        '[[expect]]\ndevice = "right"\nname = "sags"\nmeasure = "v"\nstat = "min"\nbelow = 4.0\n'
    )
    pytester.path.joinpath("doomed.toml").write_text(doomed)
    result = pytester.runpytest("--powerhil-fast", "--junitxml", "j.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED doomed.toml::pair-doomed - *right: fail (left: pass)"])
    (failure,) = ET.parse(pytester.path / "j.xml").getroot().iter("failure")
    lines = failure.get("message", "").splitlines()
    assert lines[0].endswith("right: fail (left: pass)")
    assert len(lines) == 2 and "FAIL  right: sags" in lines[1] and "(limit < 4 V)" in lines[1]
    props = properties(pytester.path / "j.xml", "pair-doomed")
    assert (props["powerhil.left.verdict"], props["powerhil.right.verdict"]) == ("pass", "fail")
    assert props["powerhil.right: sags.state"] == "fail"


def test_each_board_of_several_gets_the_port_its_name_is_given(
    pytester: pytest.Pytester,
) -> None:
    """`--powerhil-serial NAME=PATH` once for each device, as `harness run --serial` takes
    it: the left board's port is opened (and, missing, is the item's one line); a plain port
    for a scenario of two is refused in one line naming the devices."""
    pytester.path.joinpath("pair.toml").write_text(PAIR)
    left, right = pytester.path / "tty-left", pytester.path / "tty-right"
    board = ["--no-powerhil-fast", "--powerhil-target", "board"]
    named = [f"--powerhil-serial=left={left}", f"--powerhil-serial=right={right}"]
    result = pytester.runpytest(*board, *named)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"left: {left}: no such serial port*", f"running pair.toml: *right on board on {right} *"]
    )
    plain = pytester.runpytest(*board, f"--powerhil-serial={left}")
    plain.assert_outcomes(failed=1)
    plain.stdout.fnmatch_lines(
        [f"--powerhil-serial {left}: the scenario has 2 devices; name the one it is for: *"]
    )
    assert "Traceback" not in result.stdout.str() + plain.stdout.str()


def test_a_bad_scenario_is_one_collection_error_and_other_toml_files_are_not_collected(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("typo.toml").write_text('[scenario]\nname = "typo"\nduraton = "10s"\n')
    pytester.path.joinpath("pyproject.toml").write_text('[project]\nname = "bench-tests"\n')
    pytester.path.joinpath("bench.toml").write_text('[supply]\ndriver = "manual"\n')
    result = pytester.runpytest("--powerhil-fast")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ['typo.toml:3: scenario.duraton: unknown key (did you mean "duration"?)*']
    )
    result.stdout.fnmatch_lines(["collected 0 items / 1 error"])  # nor bench.toml, nor pyproject
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--powerhil-target", "board"], "ERROR: --powerhil-target board needs --powerhil-serial*"),
        (["--powerhil-serial", "/dev/ttyACM0"], "ERROR: --powerhil-serial /dev/ttyACM0: *board"),
        (["--powerhil-supply", "manual"], "ERROR: --powerhil-supply: the mock target drives*"),
        (["--powerhil-seed", "seven"], "ERROR: --powerhil-seed seven: expected a whole number*"),
        (
            ["--powerhil-target", "board", "--powerhil-serial", "/a", "--powerhil-serial", "/b"],
            "ERROR: --powerhil-serial /b: with more than one --powerhil-serial, name the device*",
        ),
        (
            ["--powerhil-target", "board", "--powerhil-serial", "/a", "--powerhil-supply", "x=y"],
            'ERROR: --powerhil-supply x=y: unknown supply driver "y"*',
        ),
    ],
    ids=[
        "board-without-serial",
        "serial-without-board",
        "supply-on-the-mock",
        "seed",
        "two-plain-ports",
        "bad-named-supply",
    ],
)
def test_options_that_cannot_go_together_are_one_usage_line(
    pytester: pytest.Pytester, args: list[str], line: str
) -> None:
    shutil.copy(ROOT / "scenarios" / "brownout.toml", pytester.path)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [x for x in result.stderr.lines if x.strip()] == [result.stderr.lines[0]]
    result.stderr.fnmatch_lines([line])


def test_the_examples_run_without_trio_mode_in_virtual_time(pytester: pytest.Pytester) -> None:
    """The fixtures make their tests trio tests in a project that sets no `trio_mode`, and
    --powerhil-fast runs those on a MockClock (the scenario items have theirs from the run)."""
    shutil.copytree(ROOT / "examples", pytester.path / "examples")
    pytester.path.joinpath("examples", "test_clock.py").write_text(
        "import trio, trio.testing\n"
        "async def test_virtual(device):\n"
        "    assert isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)\n"
    )
    # importlib: this process may have imported the examples' own test module by its name
    result = pytester.runpytest("--powerhil-fast", "--import-mode=importlib", "examples")
    result.assert_outcomes(passed=9)


@pytest.mark.slow
def test_the_examples_run_on_the_sim_in_its_virtual_time(pytester: pytest.Pytester) -> None:
    """--powerhil-target sim --powerhil-fast: each fixture's run, one after another in the
    test's trio loop, runs the firmware unthrottled on the simulator's clock (not on a
    MockClock, which would leave the sim behind and fail every expectation)."""
    shutil.copytree(ROOT / "examples", pytester.path / "examples")
    pytester.path.joinpath("examples", "test_clock.py").write_text(
        "import trio\n"
        "from harness.targets.simclock import SimClock\n"
        "async def test_virtual(run_scenario):\n"
        "    record = await run_scenario('brownout')\n"
        "    assert record.verdict == 'pass' and record.target == 'sim'\n"
        "    assert isinstance(trio.lowlevel.current_clock(), SimClock)\n"
    )
    result = pytester.runpytest(
        "--powerhil-fast", "--powerhil-target", "sim", "--import-mode=importlib", "examples"
    )
    # two-rails.toml's devices are mocks: it runs on theirs; the tests of its session skip
    result.assert_outcomes(passed=6, skipped=3)


def test_a_device_the_session_cannot_open_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        async def test_it(device):
            await device.samples(1)
        """
    )
    missing = pytester.path / "no-such-port"
    result = pytester.runpytest("--powerhil-target", "board", "--powerhil-serial", str(missing))
    result.assert_outcomes(failed=1)  # pytest-trio sets a trio fixture up in the test's call
    result.stdout.fnmatch_lines([f"{missing}: no such serial port*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    "test",
    [
        "async def test_it(device):\n"
        "    await device.samples(2)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    await trio.sleep(3600)\n",
        "async def test_it(run_scenario):\n"
        "    async def later():\n"
        "        await trio.sleep(3)\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    async with trio.open_nursery() as nursery:\n"
        "        nursery.start_soon(later)\n"
        "        await run_scenario('brownout')\n",
    ],
    ids=["device", "run_scenario"],
)
def test_ctrl_c_in_a_test_using_a_fixture_stops_its_run_and_then_the_session(
    pytester: pytest.Pytester, test: str
) -> None:
    """The run catches the signal (and ends drained, with its record); the test does not go on
    and pass, nor does the session: it stops as Ctrl-C stops pytest."""
    pytester.makepyfile(
        f"import os, signal, trio\n\n{test}\n\nasync def test_next(device):\n    pass\n"
    )
    result = pytester.runpytest("--powerhil-fast", no_reraise_ctrlc=True)  # the inner one's
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    result.assert_outcomes()  # neither passed, nor the next one run


def test_an_ini_s_powerhil_fast_is_turned_off_by_no_powerhil_fast(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\npowerhil_fast = true\n")
    pytester.makepyfile("def test_it(powerhil_options):\n    assert not powerhil_options.fast\n")
    board = ["--powerhil-target", "board", "--powerhil-serial", str(pytester.path / "tty")]
    refused = pytester.runpytest(*board)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["ERROR: powerhil_fast = true (the ini): a board runs in real time*--no-powerhil-fast"]
    )
    pytester.runpytest(*board, "--no-powerhil-fast").assert_outcomes(passed=1)
    pytester.runpytest("--no-powerhil-fast").assert_outcomes(passed=1)
    fast = pytester.runpytest("--powerhil-fast", *board)
    fast.stderr.fnmatch_lines(["ERROR: --powerhil-fast: a board runs in real time*"])


def test_a_sync_test_that_uses_device_is_one_line_and_the_next_test_is_unharmed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_sync(device):
            pass

        async def test_both(device):
            await device.samples(1)
        """
    )
    result = pytester.runpytest("--powerhil-fast")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_sync*",
            "test_a_sync_test_*.py::test_sync: uses powerhil's device fixture, which runs under "
            "trio; make the test `async def`",
            "=*",
        ]
    )
    assert "_finalizers" not in result.stdout.str()


def test_a_value_the_device_would_refuse_fails_with_its_value_error_not_a_group(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        async def test_it(device):
            await device.command("set_interval", value=-5)
        """
    )
    result = pytester.runpytest("--powerhil-fast")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E * ValueError: set_interval *: the device would refuse it*"])
    assert "ExceptionGroup" not in result.stdout.str()


def test_a_finite_device_scenario_ended_by_its_test_is_logged_stopped(
    pytester: pytest.Pytester,
) -> None:
    shutil.copy(ROOT / "scenarios" / "brownout.toml", pytester.path)
    pytester.makeconftest(
        """
        import pathlib, pytest
        from harness.scenario.load import load

        @pytest.fixture
        def device_scenario():
            return load(pathlib.Path(__file__).parent / "brownout.toml")
        """
    )
    test = pytester.makepyfile(
        """
        async def test_it(device):
            await device.samples(2)
        """
    )
    result = pytester.runpytest("--powerhil-fast", "--powerhil-db", "log.db", test.name)
    result.assert_outcomes(passed=1)
    with sqlite3.connect(pytester.path / "log.db") as conn:
        assert conn.execute("SELECT scenario, verdict FROM runs").fetchall() == [
            ("brownout", "stopped")
        ]


def test_a_device_session_keeps_no_samples_its_test_did_not_await(
    pytester: pytest.Pytester,
) -> None:
    """2,000 samples (20 s of 10 ms reports) pass while the test sleeps: held, they would be
    over half a MB; `samples(n)` still gives the next n after a wait."""
    pytester.makepyfile(
        """
        import tracemalloc, trio

        async def test_soak(device):
            await device.command("set_interval", value=10)
            first = await device.samples(1)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await trio.sleep(20)
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert device.totals.delivered >= 1990
            assert grown < 200_000, grown
            (later,) = await device.samples(1)
            assert later.seq > first[0].seq + 1990  # the next one, not one kept
        """
    )
    pytester.runpytest("--powerhil-fast").assert_outcomes(passed=1)


def test_a_damaged_log_is_the_harness_s_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log opened, but SQLite finds it damaged when the run is entered in it."""

    def damaged(*args: object) -> int:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(harness.store.recorder, "create_run", damaged)
    shutil.copy(ROOT / "scenarios" / "brownout.toml", pytester.path)
    pytester.makepyfile(
        """
        async def test_rs(run_scenario):
            await run_scenario("brownout")

        async def test_device(device):
            pass
        """
    )
    result = pytester.runpytest("--powerhil-fast", "--powerhil-db", "log.db")
    result.assert_outcomes(failed=3)
    line = "log.db: damaged database (database disk image is malformed); nothing was written*"
    result.stdout.fnmatch_lines([line] * 3)
    assert "DatabaseError" not in result.stdout.str()


def test_a_project_s_own_device_fixture_or_parameter_is_left_alone(
    pytester: pytest.Pytester,
) -> None:
    """Only the plugin's fixtures make a test a trio test: a `device` a conftest defines, or a
    test parametrizes, is the project's, and its sync tests run as they always did."""
    pytester.makeconftest("import pytest\n@pytest.fixture\ndef device():\n    return 'my board'\n")
    pytester.makepyfile(
        "import pytest\n"
        "def test_mine(device):\n"
        "    assert device == 'my board'\n"
        "@pytest.mark.parametrize('device', ['a', 'b'])\n"
        "def test_parametrized(device):\n"
        "    assert device in 'ab'\n"
    )
    pytester.runpytest().assert_outcomes(passed=3)


async def test_a_device_whose_link_ended_ends_its_own_waits_while_the_run_goes_on() -> None:
    """One device of a session's several: its link ended (the run's `DeviceRun.error`), the
    other's goes on publishing; what the test awaits of the ended one fails with why."""
    from harness.pytest_plugin.device import Device, SessionEnded
    from harness.runner.bus import RunEvent

    right = Device("right")
    run = SimpleNamespace(error=None, session=object())
    right._ctx = SimpleNamespace(devices={"right": run})  # type: ignore[assignment]
    failed: list[str] = []

    async def wait() -> None:
        with pytest.raises(SessionEnded) as raised:
            await right.samples(1)
        failed.append(str(raised.value))

    with trio.fail_after(5):  # a wait the ended link does not end fails here, not hangs
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.sleep(0.1)
            right._take(RunEvent("hello", 0.1, device="left"))  # the other's: no sample
            await trio.sleep(0.1)
            assert failed == []  # still waiting
            run.error = "the device's stream ended at 0.2 s"
            right._take(RunEvent("hello", 0.3, device="left"))
    assert failed == ["1 samples: right's link ended first (the device's stream ended at 0.2 s)"]
