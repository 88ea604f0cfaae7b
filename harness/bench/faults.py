"""Faults: goodput of a lossy link over a clean one, on the mock at 115,200 baud, once clean
and once with 10 % drop, 5 % corrupt, 5 % reorder and 2 % duplicate in both directions, with a
ping every second; both in virtual time, same seed. Goodput is distinct samples delivered per
second of the scenario (those ending within its time); the lossy run must also lose none, deliver none twice, and execute every command
exactly once.

The goal is measured with a report every 20 ms (61 % of the line: room for the resends 15 %
loss needs). The same pair at a report every 10 ms (more than the line carries: the window
fills and the device folds) is the saturated figure; there each lost frame costs line time
too, so about 0.80 is the ceiling any ARQ could reach (1 - 15 % lost - 5 % reordered)."""

from __future__ import annotations

import io
from pathlib import Path

from harness.bench.goals import Group
from harness.runner.bus import Published, SampleEvent
from harness.runner.context import RunOptions, tap
from harness.runner.record import RunRecord
from harness.runner.run import run
from harness.scenario.load import parse

FAULTS = "drop = 0.10\ncorrupt = 0.05\nreorder = 0.05\nreorder_gap = 2\nduplicate = 0.02\n"

SCENARIO = """\
[scenario]
name = "bench-faults-{name}"
duration = "{seconds}s"
seed = 7
[link]
{faults}baud = 115200
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[step]]
at = "100ms"
send = {{ cmd = "set_interval", value = {interval} }}
[[step]]
at = "1s"
send = {{ cmd = "ping" }}
repeat = {pings}
every = "1s"
"""


GOAL_INTERVAL_MS = 20
SATURATED_INTERVAL_MS = 10


def _run(tmp: Path, name: str, faults: str, seconds: int, interval: int) -> tuple[RunRecord, float]:
    """The run's record, and its goodput: samples delivered that end within the scenario's
    time, per second (the drain after it delivers what was still in flight)."""
    text = SCENARIO.format(
        name=name, seconds=seconds, faults=faults, pings=seconds - 2, interval=interval
    )
    scenario = parse(text, tmp / f"faults-{name}.toml")
    in_time = 0

    def take(item: Published) -> None:
        nonlocal in_time
        in_time += isinstance(item, SampleEvent) and item.end <= seconds

    record = run(scenario, RunOptions(fast=True, out=io.StringIO()), (tap(take),)).record
    return record, in_time / seconds


def bench_faults(group: Group, tmp: Path, seconds: int) -> None:
    _, clean_rate = _run(tmp, "clean", "", seconds, GOAL_INTERVAL_MS)
    lossy, lossy_rate = _run(tmp, "lossy", FAULTS, seconds, GOAL_INTERVAL_MS)
    _, full_clean = _run(tmp, "clean-saturated", "", seconds, SATURATED_INTERVAL_MS)
    full_lossy_record, full_lossy = _run(
        tmp, "lossy-saturated", FAULTS, seconds, SATURATED_INTERVAL_MS
    )
    link = lossy.link
    commands = lossy.commands
    done = sum(c.outcome == "done" for c in commands)
    group.goal("goodput lossy / clean", lossy_rate / clean_rate, ">=", 0.8, "x")
    group.goal("samples lost", link.lost, "==", 0)
    group.goal("samples duplicated", link.duplicated, "==", 0)
    group.goal(
        "commands not executed once",
        len(commands) - done + link.commands_executed_twice,
        "==",
        0,
    )
    group.figures.update(
        {
            "virtual_seconds": seconds,
            "clean_samples_per_s": clean_rate,
            "lossy_samples_per_s": lossy_rate,
            "commands": len(commands),
            "retransmissions": link.retransmissions,
            "corrupt_frames": link.corrupt,
            "faults_injected": sum(lossy.injected.values()),
            "saturated_goodput_ratio": full_lossy / full_clean,
            "saturated_lost": full_lossy_record.link.lost,
            "saturated_duplicated": full_lossy_record.link.duplicated,
        }
    )
