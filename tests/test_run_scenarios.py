"""Running scenarios on the mock in virtual time: verdicts, records, replays."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from harness.bench.faults import FAULTS, SCENARIO
from harness.cli import main, shipped_scenarios
from harness.runner.bus import Published, RunEvent, SampleEvent
from harness.runner.context import Extension, RunContext, RunOptions, tap
from harness.runner.record import junit_xml
from harness.runner.run import run_scenario
from harness.scenario.load import load, parse
from harness.targets import make_target
from tests.scenario_texts import FAILING


def options(**kw: object) -> RunOptions:
    return RunOptions(fast=True, out=io.StringIO(), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
async def test_shipped_scenario_passes_on_the_mock(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    result = await run_scenario(load(path), options())
    rec = result.record
    assert result.exit_code == 0, rec.expectations
    assert rec.verdict == "pass"
    assert rec.link.lost == 0 and rec.link.duplicated == 0
    assert rec.link.commands_executed_twice == 0
    assert rec.link.delivered > 0


async def test_failing_scenario_names_the_expectation_and_measured_value(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sc = parse(FAILING, tmp_path / "doomed.toml")
    out = io.StringIO()
    result = await run_scenario(sc, RunOptions(fast=True, out=out))
    assert result.exit_code == 1
    table = out.getvalue()
    (line,) = [x for x in table.splitlines() if "FAIL" in x and "rail sags" in x]
    measured = result.record.expectations[0].measured
    assert 4.98 < measured < 5.0 and f"{measured:.4g} V" in line
    assert "PASS  no uv alert" in table


def test_failing_scenario_exits_1_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "doomed.toml"
    path.write_text(FAILING)
    assert main(["run", str(path), "--fast", "--no-view"]) == 1
    assert "doomed: FAIL" in capsys.readouterr().out


def test_lossy_link_json_record(tmp_path: Path) -> None:
    """The issue's bar: `harness run scenarios/lossy-link.toml --fast --json out.json`."""
    out = tmp_path / "out.json"
    assert (
        main(["run", "scenarios/lossy-link.toml", "--fast", "--json", str(out), "--no-view"]) == 0
    )
    rec = json.loads(out.read_text())
    assert sum(rec["injected"].values()) > 0
    assert rec["injected"]["drop"] > 0 and rec["injected"]["corrupt"] > 0
    for key in ("lost", "duplicated", "commands_failed", "retransmissions"):
        assert key in rec["link"]
    assert rec["link"]["lost"] == 0 and rec["link"]["retransmissions"] > 0
    assert set(rec["injected_by_direction"]) == {"to_host", "to_device"}


def test_junit_has_a_testcase_per_expectation_with_the_measured_value(tmp_path: Path) -> None:
    path = tmp_path / "doomed.toml"
    path.write_text(FAILING)
    junit = tmp_path / "report.xml"
    assert main(["run", str(path), "--fast", "--junit", str(junit), "--no-view"]) == 1
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "rail sags below 4 V",
        "no uv alert (whole run)",
        "device kept reporting",  # the check every run makes
    ]
    failure = cases[0].find("failure")
    assert failure is not None and "measured: 4.99" in (failure.get("message") or "")
    assert cases[1].find("failure") is None and cases[2].find("failure") is None


async def faults_of(seed: int) -> list[tuple[float, str, str, str, int | None]]:
    seen: list[tuple[float, str, str, str, int | None]] = []

    def take(item: Published) -> None:
        if isinstance(item, RunEvent) and item.kind == "fault":
            d = item.data
            seen.append((round(item.at, 6), d["direction"], d["fault"], d["what"], d["seq"]))

    await run_scenario(load("scenarios/brownout.toml"), options(seed=seed), (tap(take),))
    return sorted(seen)


def test_same_seed_gives_the_same_injected_faults() -> None:
    clock = lambda: trio.testing.MockClock(autojump_threshold=0)  # noqa: E731
    first = trio.run(faults_of, 7, clock=clock())
    again = trio.run(faults_of, 7, clock=clock())
    other = trio.run(faults_of, 8, clock=clock())
    assert first and first == again
    assert other != first


async def test_reset_is_seen_and_its_loss_accounted(autojump_clock: trio.testing.MockClock) -> None:
    rec = (await run_scenario(load("scenarios/reset.toml"), options())).record
    (reset,) = rec.device.resets
    assert (reset.old_boot, reset.new_boot) == (1, 2)
    assert reset.time_lost is not None and 0 < reset.time_lost < 0.3  # the pending sample
    assert rec.device.hello.boot == 2


SHARED_RAIL = """\
[scenario]
name = "deep brownout"
duration = "20s"
[device]
shared_rail = true
[link]
drop = 0.05
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "5s"
volts = 5.0
[[supply]]
at = "7s"
volts = 2.0
[[supply]]
at = "9s"
volts = 5.0
[[expect]]
resets = 1
[[expect]]
link = { lost = 0, duplicated = 0 }
"""


async def test_brownout_on_a_shared_rail_reboots_the_mock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sc = parse(SHARED_RAIL, tmp_path / "deep.toml")
    assert "brownout" in sc.needs
    rec = (await run_scenario(sc, options())).record
    assert rec.verdict == "pass", rec.expectations
    (reset,) = rec.device.resets
    assert (reset.old_boot, reset.new_boot) == (1, 2)
    # Below 2.7 V from 6.53 s to 7.47 s; the last sample of boot 1 ended at 6 s.
    assert abs(reset.time_lost - 1.467) < 0.01


UNANSWERED = """\
[scenario]
name = "device gone"
duration = "10s"
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
at = "3.1s"
volts = 1.0
[[step]]
at = "1s"
send = { cmd = "ping" }
[[step]]
at = "6s"
send = { cmd = "ping" }
[[expect]]
acked_within = "1s"
[[expect]]
link = { commands_failed = 0 }
"""


async def test_a_command_never_answered_fails_the_run(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The device lost power at 3 s; the 6 s ping is still being retried when the run ends:
    it counts as failed ("unanswered"), not as passed."""
    rec = (await run_scenario(parse(UNANSWERED, tmp_path / "u.toml"), options())).record
    assert rec.verdict == "fail"
    assert [c.outcome for c in rec.commands] == ["done", "failed"]
    assert rec.commands[1].reason in ("unanswered", "timeout")
    assert rec.link.commands_failed == 1
    assert [e.state for e in rec.expectations] == ["fail", "fail"]


async def test_a_one_hour_soak_runs_in_virtual_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sc = parse(
        '[scenario]\nname = "soak"\nduration = "1h"\n[link]\ndrop = 0.05\ncorrupt = 0.02\n'
        "[[expect]]\nlink = { lost = 0, duplicated = 0 }\n",
        tmp_path / "soak.toml",
    )
    rec = (await run_scenario(sc, options())).record
    assert rec.verdict == "pass"
    assert rec.link.delivered >= 3590


async def test_a_saturated_lossy_line_loses_nothing_and_keeps_most_of_its_goodput(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Reports every 10 ms are more than 115,200 baud carries: the window stays full and the
    device folds. Samples still in flight when the time is up are not lost (they are drained);
    with 10 % drop, 5 % corrupt, 5 % reorder and 2 % duplicate the ARQ keeps at least 70 % of
    the clean line's samples (each lost frame costs line time: 80 % is the ceiling)."""
    delivered = []
    for name, faults in (("clean", ""), ("lossy", FAULTS)):
        text = SCENARIO.format(name=name, seconds=30, faults=faults, pings=25, interval=10)
        sc = parse(text, tmp_path / f"{name}.toml")
        link = (await run_scenario(sc, options())).record.link
        assert (link.lost, link.duplicated, link.commands_failed) == (0, 0, 0)
        assert link.commands_executed_twice == 0
        delivered.append(link.delivered)
    clean, lossy = delivered
    assert clean >= 0.95 * 30 * 11_520 / 140  # the clean line is full
    assert lossy >= 0.7 * clean


def test_the_json_record_keeps_its_documented_keys(tmp_path: Path) -> None:
    """The typed record serialises to the keys docs/scenarios.md documents, in this order."""
    out = tmp_path / "r.json"
    assert main(["run", "scenarios/reset.toml", "--fast", "--json", str(out), "--no-view"]) == 0
    rec = json.loads(out.read_text())
    assert list(rec) == [
        "scenario",
        "target",
        "seed",
        "started",
        "wall_seconds",
        "virtual_time",
        "verdict",
        "error",
        "device",
        "expectations",
        "checks",
        "link",
        "strict",
        "injected",
        "injected_by_direction",
        "commands",
        "supply",
        "devices",
    ]
    (section,) = rec["devices"]  # one device: its section holds what the record's fields do
    assert section["name"] == "dut" and section["expectations"] == rec["expectations"]
    assert rec["supply"] is None  # the mock drives its rail itself: no bench supply
    assert list(rec["scenario"]) == ["name", "file", "description", "duration"]
    assert list(rec["device"]) == [
        "hello",
        "boots",
        "resets",
        "silences",
        "other_devices",
        "log",
        "log_lines",
    ]
    assert list(rec["device"]["hello"]) == ["fw", "boot", "interval", "win"]
    assert list(rec["device"]["resets"][0]) == [
        "at",
        "old_boot",
        "new_boot",
        "samples_lost",
        "time_lost",
        "counter_advanced",
    ]
    assert list(rec["expectations"][0]) == [
        "number",
        "label",
        "state",
        "measured",
        "detail",
        "limit",
        "unit",
        "margin",
        "device",
    ]
    assert rec["checks"] == [
        {
            "number": 0,
            "label": "device kept reporting",
            "state": "pass",
            "measured": None,
            "detail": "",
            "limit": "",
            "unit": "",
            "margin": None,
            "device": None,
        }
    ]
    assert list(rec["link"])[:3] == ["delivered", "lost", "lost_to_resets"]
    assert "duplicates_dropped" in rec["link"]


def signal_at(seconds: float, signum: int) -> Extension:
    """An extension that sends this process `signum` at scenario second `seconds`, as a person
    pressing Ctrl-C (or a supervisor's SIGTERM) would."""

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        async def later() -> None:
            await trio.sleep_until(ctx.origin + seconds)
            os.kill(os.getpid(), signum)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            yield
            nursery.cancel_scope.cancel()

    return extension


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_stopped_run_skips_what_it_never_reached(
    signum: int, code: int, autojump_clock: trio.testing.MockClock
) -> None:
    """brownout stopped at 4.8 s: the windows from 6 s on were never reached, so they are
    skipped, not failed, in the record and the JUnit XML; the exit code is the signal's."""

    stop = signal_at(4.8, signum)
    result = await run_scenario(load("scenarios/brownout.toml"), options(), (stop,))
    assert result.exit_code == code and result.record.verdict == "interrupted"
    states = {e.label: e.state for e in result.record.expectations}
    assert states["uv alert within 6s..12s"] == "skipped"
    assert "fail" not in states.values()
    xml = junit_xml(result.record)
    assert 'failures="0"' in xml and f'skipped="{list(states.values()).count("skipped")}"' in xml


async def test_a_stopped_run_skips_counts_and_commands_it_never_reached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """reset.toml stopped at 6 s: its reset (at 12.1 s) and the command it sends after it (at
    14 s) never happened; the count and the command's ack are skipped, each saying when the
    run stopped, and nothing fails."""
    result = await run_scenario(
        load("scenarios/reset.toml"), options(), (signal_at(6.0, signal.SIGINT),)
    )
    assert result.exit_code == 130
    by_label = {e.label: e for e in result.record.expectations}
    resets = by_label["device resets seen = 1"]
    ack = by_label["step[4] set_threshold acknowledged within 2s"]
    for e in (resets, ack):
        assert e.state == "skipped" and "the run stopped at 6.0 s" in e.detail, e
    assert "fail" not in {e.state for e in result.record.expectations}


async def test_a_monitor_record_is_strict_json(autojump_clock: trio.testing.MockClock) -> None:
    """`harness monitor` has no end: its record says so with a null duration, never Infinity,
    so every JSON reader (the run page, jq) can read it."""
    from harness.runner.monitor import monitor_scenario

    out = io.StringIO()
    stop = signal_at(3.0, signal.SIGINT)
    result = await run_scenario(monitor_scenario(), RunOptions(fast=True, out=out), (stop,))
    assert result.exit_code == 0 and result.record.verdict == "stopped"
    assert (
        json.loads(json.dumps(result.record.as_dict(), allow_nan=False))["scenario"]["duration"]
        is None
    )
    assert "inf" not in out.getvalue()


RESET_KEEPS_SETTINGS = """\
[scenario]
name = "settings survive a reset"
duration = "20s"
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "14s"
volts = 5.0
[[supply]]
at = "14.5s"
volts = 4.0
[[supply]]
at = "16s"
volts = 4.0
[[supply]]
at = "16.5s"
volts = 5.0
[[step]]
at = "1s"
send = { cmd = "set_interval", value = 500 }
[[step]]
at = "1.5s"
send = { cmd = "set_threshold", uv = 4.5 }
[[step]]
at = "2s"
send = { cmd = "set_threshold", oc = 1.0 }
[[step]]
at = "2.5s"
send = { cmd = "set_avg", value = 4 }
[[step]]
at = "3s"
send = { cmd = "set_interval", value = 250 }
[[step]]
at = "8s"
reset = true
[[expect]]
alert = "uv"
within = ["13s", "17s"]
[[expect]]
resets = 1
[[expect]]
link = { commands_failed = 0 }
"""

BROWNOUT_KEEPS_SETTINGS = """\
[scenario]
name = "settings survive a brown-out"
duration = "20s"
[device]
shared_rail = true
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "5s"
volts = 5.0
[[supply]]
at = "5.2s"
volts = 2.0
[[supply]]
at = "7s"
volts = 2.0
[[supply]]
at = "7.2s"
volts = 5.0
[[supply]]
at = "14s"
volts = 5.0
[[supply]]
at = "14.5s"
volts = 4.0
[[supply]]
at = "16s"
volts = 4.0
[[supply]]
at = "16.5s"
volts = 5.0
[[step]]
at = "1s"
send = { cmd = "set_interval", value = 500 }
[[step]]
at = "1.5s"
send = { cmd = "set_threshold", uv = 4.5 }
[[step]]
at = "2s"
send = { cmd = "set_threshold", oc = 1.0 }
[[step]]
at = "2.5s"
send = { cmd = "set_avg", value = 4 }
[[step]]
at = "3s"
send = { cmd = "set_interval", value = 250 }
[[expect]]
alert = "uv"
within = ["13s", "17s"]
[[expect]]
resets = 1
[[expect]]
link = { commands_failed = 0 }
"""


@pytest.mark.parametrize(
    "text", [RESET_KEEPS_SETTINGS, BROWNOUT_KEEPS_SETTINGS], ids=["reset step", "brown-out"]
)
async def test_the_scenarios_settings_are_sent_again_after_a_new_boot(
    text: str, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A new boot starts from the defaults (1 s reports, thresholds off). The run sends the last
    value of each setting again, in the order last sent, so the dip at 14 s still raises the uv
    alert, the new boot reports every 250 ms, and the record marks those commands re-applied."""
    sc = parse(text, tmp_path / "keeps.toml")
    target = make_target("mock", sc, sc.seed)
    samples: list[SampleEvent] = []
    result = await run_scenario(
        sc,
        options(),
        (tap(lambda e: samples.append(e) if isinstance(e, SampleEvent) else None),),
        target,
    )
    rec = result.record
    assert result.exit_code == 0, (rec.expectations, rec.checks)
    reapplied = [c for c in rec.commands if c.reapplied]
    assert [(c.name, c.args, c.step, c.outcome) for c in reapplied] == [
        ("set_threshold", {"uv": 4.5, "oc": 1.0}, None, "done"),
        ("set_avg", {"value": 4}, None, "done"),
        ("set_interval", {"value": 250}, None, "done"),
    ]
    (reset,) = rec.device.resets
    assert all(c.issued >= reset.at - 0.001 for c in reapplied)  # at the new boot (rounded)
    settings = target.device.settings  # type: ignore[attr-defined]
    assert (settings.interval_ms, settings.uv, settings.oc, settings.avg) == (250, 4.5, 1.0, 4)
    later = [e.sample for e in samples if e.sample.boot == reset.new_boot and e.start > 10.0]
    assert len(later) > 30 and all(s.dt == 250 for s in later)


def test_a_run_loads_only_what_it_uses(tmp_path: Path) -> None:
    """A run in virtual time never imports the viewer's web stack (it is not served), and a
    run without --junit never imports xml; with --junit it does, and writes the report."""
    probe = (
        "import sys\n"
        "from harness.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, *sorted(m for m in ('quart', 'hypercorn', 'xml.etree') if m in sys.modules))\n"
    )

    def loaded(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", probe, "run", "scenarios/clean.toml", "--fast", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.splitlines()[-1].split()

    assert loaded("--db", str(tmp_path / "a.db")) == ["0"]
    junit = tmp_path / "report.xml"
    assert loaded("--no-view", "--junit", str(junit)) == ["0", "xml.etree"]
    assert ET.parse(junit).getroot().tag == "testsuite"
