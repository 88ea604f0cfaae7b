"""Firmware, when the toolchain is here: the Uno image's flash and static SRAM (avr-size), and
a run of the real firmware in simavr (the sim target) for its readings per second — the sum of
`n` over the sum of `dt` of every sample after the first, with the runner's I2C bus at the rate
the firmware sets (firmware/sim/twi_timing.c) — and the runner's simulated time over wall time."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

from harness.bench.goals import Group
from harness.errors import TargetError
from harness.runner.bus import Published, SampleEvent
from harness.runner.context import RunContext, RunOptions, tap
from harness.runner.run import run
from harness.scenario.load import parse
from harness.targets.simrunner import ELF, source_root

FLASH = 32_256
"""The Uno's flash for sketches (the boot loader has the rest)."""
SRAM = 2048
READINGS_PER_S = 800
"""The goal: the INA219's 12-bit shunt and bus conversions take 1.064 ms, so about 940 a second
is the sensor's limit; a loop that misses one conversion in two reads 470."""
TOOLCHAIN = "gcc-avr avr-libc binutils-avr arduino-core-avr arduino-mk"

SCENARIO = """\
[scenario]
name = "bench-firmware"
duration = "{seconds}s"
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
"""


def sizes(elf: Path) -> tuple[int, int]:
    """(flash, static SRAM) in bytes: .text + .data, and .data + .bss + .noinit."""
    out = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True, check=True)
    section = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            section[parts[0]] = int(parts[1])
    flash = section.get(".text", 0) + section.get(".data", 0)
    sram = section.get(".data", 0) + section.get(".bss", 0) + section.get(".noinit", 0)
    return flash, sram


def _make(root: Path, target: str) -> str | None:
    """Build a make target; None if it worked, else the last line it printed."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(root), target], capture_output=True, text=True
    )
    if done.returncode == 0:
        return None
    lines = [x for x in (done.stderr + done.stdout).splitlines() if x.strip()]
    return next((x for x in lines if "apt-get install" in x), lines[-1] if lines else "failed")


def bench_firmware(group: Group, tmp: Path, seconds: int) -> None:
    if shutil.which("avr-gcc") is None or shutil.which("avr-size") is None:
        group.skipped = f"no AVR toolchain: sudo apt-get install {TOOLCHAIN}"
        return
    try:
        root = source_root()
    except TargetError as exc:
        group.skipped = str(exc)
        return
    if (why := _make(root, "firmware")) is not None:
        group.skipped = f"make firmware: {why}"
        return
    flash, sram = sizes(root / ELF)
    group.goal("Uno flash", flash, "<=", FLASH // 2, "B")
    group.goal("Uno static SRAM", sram, "<=", SRAM // 2, "B")
    group.figures["flash_percent"] = 100 * flash / FLASH
    group.figures["sram_percent"] = 100 * sram / SRAM
    if (why := _make(root, "sim")) is not None:
        group.figures["sim"] = f"not built: {why}"
        return
    readings = dt_ms = samples = 0
    contexts: list[RunContext] = []

    def take(item: Published) -> None:
        nonlocal readings, dt_ms, samples
        if isinstance(item, SampleEvent):
            samples += 1
            if samples > 1:  # the first covers the boot, not a steady interval
                readings += item.sample.n
                dt_ms += item.sample.dt

    scenario = parse(SCENARIO.format(seconds=seconds), tmp / "firmware.toml")
    result = run(scenario, RunOptions(target="sim", out=io.StringIO()), (tap(take, contexts),))
    if result.exit_code != 0:
        raise RuntimeError(
            f"bench: the sim run ended {result.record.verdict}: {result.record.error}"
        )
    clock = contexts[0].target.clock
    if "ratio" not in clock or not dt_ms:
        raise RuntimeError("bench: the sim runner gave no time figures or no samples")
    rate = readings / (dt_ms / 1000)
    group.goal("readings per second (simavr, true I2C timing)", rate, ">=", READINGS_PER_S, "/s")
    group.goal("sim time / wall time off by", abs(clock["ratio"] - 1) * 100, "<=", 1, "%")
    group.figures.update(
        {
            "sim_seconds": clock["sim"],
            "wall_seconds": clock["wall"],
            "sim_wall_ratio": clock["ratio"],
            "samples": samples,
        }
    )
