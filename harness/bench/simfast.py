"""The real firmware in virtual time (`harness run --target sim --fast`), when the toolchain is
here: scenarios/brownout.toml's seconds over the wall seconds its whole run took (start,
scenario, drain), and a soak's rate (a steady rail, its simulated seconds over its runner's
wall seconds) with the 1 h soak it gives. Both from runs in this process, one after the other."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

from harness.bench.goals import Group
from harness.errors import TargetError
from harness.runner.context import RunContext, RunOptions, tap
from harness.runner.run import run
from harness.scenario.load import load, parse
from harness.targets.simrunner import source_root

SPEEDUP = 2.0
"""brownout.toml in at most half its duration of wall time."""
SOAK_HOUR_MINUTES = 25.0
TOOLCHAIN = "gcc-avr avr-libc binutils-avr arduino-core-avr arduino-mk simavr libsimavr-dev"

SOAK = """\
[scenario]
name = "bench-soak"
duration = "{seconds}s"
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[expect]]
link = {{ lost = 0, duplicated = 0 }}
"""


def _fast_run(path: Path, text: str | None = None) -> tuple[float, dict[str, float], str]:
    """(wall seconds of the whole run, the runner's `time` figures, the verdict)."""
    scenario = parse(text, path) if text is not None else load(path)
    contexts: list[RunContext] = []
    started = time.perf_counter()
    result = run(
        scenario,
        RunOptions(target="sim", fast=True, out=io.StringIO()),
        (tap(lambda item: None, contexts),),
    )
    wall = time.perf_counter() - started
    if result.exit_code != 0:
        raise RuntimeError(
            f"bench: {path.name} on the sim --fast ended {result.record.verdict}: "
            f"{result.record.error or result.record.expectations}"
        )
    clock = contexts[0].target.clock
    if "ratio" not in clock:
        raise RuntimeError("bench: the sim runner gave no time figures")
    return wall, clock, result.record.verdict


def bench_simfast(group: Group, tmp: Path, soak_seconds: int) -> None:
    if shutil.which("avr-gcc") is None:
        group.skipped = f"no AVR toolchain: sudo apt-get install {TOOLCHAIN}"
        return
    try:
        root = source_root()
        brownout = root / "scenarios" / "brownout.toml"
        wall, clock, _ = _fast_run(brownout)
        soak_wall, soak, _ = _fast_run(tmp / "soak.toml", SOAK.format(seconds=soak_seconds))
    except TargetError as exc:  # the firmware or the sim cannot be built here
        group.skipped = str(exc)
        return
    duration = load(brownout).duration
    group.goal("brownout.toml --fast: scenario s / wall s", duration / wall, ">=", SPEEDUP, "x")
    rate = soak["sim"] / soak["wall"]
    hour = 3600 / rate / 60
    group.goal("1 h soak --fast, extrapolated", hour, "<=", SOAK_HOUR_MINUTES, "min")
    group.figures.update(
        {
            "brownout_wall_seconds": wall,
            "brownout_runner_ratio": clock["ratio"],
            "brownout_runner_waited_seconds": clock.get("waited", 0.0),
            "soak_sim_seconds": soak["sim"],
            "soak_wall_seconds": soak_wall,
            "soak_runner_ratio": rate,
            "soak_runner_waited_seconds": soak.get("waited", 0.0),
        }
    )
