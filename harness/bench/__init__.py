"""`harness bench [--quick] [--json PATH]`: the numbers the architecture holds us to
(docs/architecture.md), measured in one run on this machine, each goal with its target, its
measured value and whether it is met.

Groups, each in its own module: `ingest` (decode + HostLink + store + fan-out against line rates
and a naive loop), `history` (48 h at 10 Hz drawn at 2,000 points), `live` (frame -> WebSocket
latency and the run's memory), `devices` (N boards at 115,200 baud, every line full, in one
monitor with the store and the viewer), `faults` (goodput on a lossy link), `firmware` (size,
readings/s and simulated time, when the toolchain is here), `simfast` (the firmware in virtual
time: brownout.toml's speed-up and a soak's rate). docs/performance.md explains each figure.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.bench.goals import Group, Report, machine


@dataclass(frozen=True, slots=True)
class Sizes:
    ingest_frames: int
    naive_frames: int
    memory_after: int
    fault_seconds: int
    firmware_seconds: int
    soak_seconds: int = 600
    devices: tuple[int, ...] = (8, 16, 32, 64, 96, 128, 160, 200)
    """The `devices` group's N, in turn, up to the first that misses the goal past its N."""
    device_seconds: float = 30.0


FULL = Sizes(
    200_000, naive_frames=3000, memory_after=100_000, fault_seconds=300, firmware_seconds=30
)
QUICK = Sizes(
    30_000,
    naive_frames=1000,
    memory_after=20_000,
    fault_seconds=30,
    firmware_seconds=5,
    soak_seconds=30,
    devices=(16, 64),
    device_seconds=10.0,
)


def run_all(quick: bool = False, progress: Callable[[str], None] = lambda line: None) -> Report:
    from harness.bench.devices import bench_devices
    from harness.bench.faults import bench_faults
    from harness.bench.firmware import bench_firmware
    from harness.bench.history import bench_history
    from harness.bench.ingest import bench_ingest
    from harness.bench.live import bench_live
    from harness.bench.simfast import bench_simfast

    sizes = QUICK if quick else FULL
    report = Report(quick=quick, machine=machine())
    steps: list[tuple[str, Callable[[Group, Path], None]]] = [
        ("ingest", lambda g, tmp: bench_ingest(g, tmp, sizes.ingest_frames, sizes.naive_frames)),
        ("history", bench_history),
        ("live", lambda g, tmp: bench_live(g, tmp, sizes.memory_after)),
        (
            "devices",
            lambda g, tmp: bench_devices(g, tmp, sizes.devices, sizes.device_seconds, progress),
        ),
        ("faults", lambda g, tmp: bench_faults(g, tmp, sizes.fault_seconds)),
        ("firmware", lambda g, tmp: bench_firmware(g, tmp, sizes.firmware_seconds)),
        ("simfast", lambda g, tmp: bench_simfast(g, tmp, sizes.soak_seconds)),
    ]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="powerhil-bench-") as scratch:
        for name, measure in steps:
            group = Group(name)
            progress(f"bench: {name} ...")
            t0 = time.perf_counter()
            folder = Path(scratch) / name
            folder.mkdir()
            try:
                measure(group, folder)
            except Exception as exc:  # one group's failure must not lose the others' figures
                group.failed = f"{type(exc).__name__}: {exc}"
            group.seconds = time.perf_counter() - t0
            report.groups.append(group)
            progress(f"bench: {name} done in {group.seconds:.1f} s")
    report.seconds = time.perf_counter() - started
    return report
