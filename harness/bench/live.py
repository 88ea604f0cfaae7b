"""Latency and memory of a real run: `harness monitor --target board` in its own process, on a
pseudo-terminal this process serves as the board (a DeviceLink: the firmware's protocol), with
the viewer on a free loopback port and one trio-websocket client on `/ws`.

Latency is frame written on the device side -> sample message in the client's hands: both ends
are in this process, so one clock stamps both. The first LATENCY_FRAMES samples go at 600 a
second (0.4 of what a 2 Mbaud line carries, 7 times a 115,200 baud one); then the device runs
as fast as the harness takes its frames, and the run's resident memory is read from /proc once
`memory_after` samples have been acknowledged."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from harness.bench.goals import Group
from harness.link.commands import Settings
from harness.link.device import DeviceLink, DeviceTiming, Readings
from harness.link.events import SampleClosed
from harness.transports.pty import Pty

LATENCY_FRAMES = 10_000
INTERVAL = 0.01
"""The device's report interval (the protocol's shortest), in device seconds."""
LATENCY_RATE = 6.0
"""Device seconds per wall second while latency is measured: 600 reports a second."""
FLOOD_RATE = 250.0
"""... and afterwards, when only the count matters (the window of 8 paces it)."""
START_TIMEOUT = 20.0
RUN_TIMEOUT = 600.0
"""Longest the measurement may take once the monitor serves: the full run's 100,000 samples
with a wide margin for a slow machine."""
STEP = 0.001
"""Seconds between the device's ticks."""


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB; empty once it is gone."""
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class BenchDevice:
    """The board: 10 ms reports of a steady rail, one reading each, its clock running `rate`
    times the wall's (the harness maps device time to its own per boot: the speed is free)."""

    def __init__(self, pty: Pty) -> None:
        self.pty = pty
        self.rate = LATENCY_RATE
        self.link = DeviceLink(
            now=0.0,
            boot=1,
            settings=Settings(interval_ms=round(INTERVAL * 1000)),
            # its timeout counts device time: at the flood's speed 0.3 s would be ~1 ms
            timing=DeviceTiming(rto=0.3 * FLOOD_RATE, rto_max=2.0 * FLOOD_RATE),
        )
        self.device_now = 0.0
        self.written_at: dict[int, float] = {}
        """Wall time each sample's frame was first written, by seq (the latency phase)."""
        self.closed = 0
        self.heard = trio.Event()
        self._fresh: list[int] = []
        self._sending = trio.Lock()

    @property
    def acked(self) -> int:
        """Samples the harness has acknowledged."""
        window = self.link.window
        return window[0] if window else self.closed

    async def _flush(self) -> None:
        async with self._sending:  # the reader answers, the ticker reports: one at a time
            data = self.link.data_to_send()
            fresh, self._fresh = self._fresh, []
            if data:
                await self.pty.stream.send_all(data)
                now = time.time()
                for seq in fresh:
                    self.written_at[seq] = now

    def _note(self, events: list[object]) -> None:
        for e in events:
            if isinstance(e, SampleClosed):
                self.closed += 1
                if e.sample.seq < LATENCY_FRAMES:
                    self._fresh.append(e.sample.seq)
                elif self.rate != FLOOD_RATE:
                    self.rate = FLOOD_RATE  # latency measured: now only the count matters

    async def read(self) -> None:
        while data := await self.pty.stream.receive_some(65536):
            self.heard.set()
            self._note(self.link.feed(data, self.device_now))
            await self._flush()

    async def tick(self) -> None:
        """A reading every interval, a report each, as the window allows."""
        await self.heard.wait()  # the harness has opened the port and said hello
        reading = Readings.one(5.0, 0.25, 1.25)
        last = time.perf_counter()
        next_reading = self.device_now + INTERVAL
        while True:
            await trio.sleep(STEP)
            now = time.perf_counter()
            end = self.device_now + (now - last) * self.rate
            last = now
            events: list[object] = []
            while next_reading <= end:
                events += self.link.add_readings(next_reading, reading)
                next_reading += INTERVAL
            self.device_now = end
            events += self.link.poll(end)
            self._note(events)
            await self._flush()


async def _lines(stream: trio.abc.ReceiveStream) -> list[str]:
    """Read a process's output up to its viewer URL line."""
    buf, seen = b"", []
    with trio.fail_after(START_TIMEOUT):
        while True:
            data = await stream.receive_some(4096)
            if not data:
                raise RuntimeError(
                    "bench: the monitor ended before serving its viewer: " + " | ".join(seen)
                )
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                seen.append(line.decode(errors="replace"))
                if re.match(r"viewer: http://", seen[-1]):
                    return seen


async def _measure(tmp: Path, group: Group, memory_after: int) -> None:
    pty = Pty()
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "harness",
            "monitor",
            "--target",
            "board",
            "--serial",
            pty.path,
            "--bind",
            "127.0.0.1:0",
            "--db",
            str(tmp / "live.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=(tmp / "live.stderr").open("wb"),
    )
    device = BenchDevice(pty)
    latencies: list[float] = []
    messages = missed = 0
    rss_kb: dict[str, int] = {}
    try:
        assert process.stdout is not None
        seen = await _lines(process.stdout)
        url = re.sub(r"^viewer: (\S+).*", r"\1", seen[-1]).replace("http://", "ws://") + "ws"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(device.read)
            nursery.start_soon(device.tick)
            async with open_websocket_url(url) as ws:
                with trio.fail_after(RUN_TIMEOUT), contextlib.suppress(ConnectionClosed):
                    while device.acked < memory_after:
                        message = json.loads(await ws.get_message())
                        if message["type"] != "measurements":
                            continue
                        came = time.time()
                        for item in message["items"]:  # every sample the viewer had waiting
                            messages += 1
                            missed += item["missed"]
                            seq = item["data"]["seq"]
                            if seq in device.written_at:
                                latencies.append((came - device.written_at.pop(seq)) * 1000)
                if device.acked < memory_after:
                    raise RuntimeError(f"bench: the viewer closed after {device.acked} samples")
                rss_kb = memory_kb(process.pid)
            # Ctrl-C: the monitor drains the link (the device still answers) and records the run
            process.send_signal(signal.SIGINT)
            with trio.fail_after(15):
                code = await process.wait()
            nursery.cancel_scope.cancel()
        if code != 0:
            tail = (tmp / "live.stderr").read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"bench: the monitor exited with {code}: {' | '.join(tail)}")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await pty.aclose()
    ordered = sorted(latencies)
    if len(ordered) < LATENCY_FRAMES * 0.9:
        raise RuntimeError(f"bench: only {len(ordered)} samples reached the client")
    group.goal("frame -> browser p99", percentile(ordered, 0.99), "<=", 20, "ms")
    group.goal(f"run RSS after {memory_after:,} samples", rss_kb["VmRSS"] / 1024, "<=", 50, "MB")
    group.figures.update(
        {
            "latency_frames": len(ordered),
            "latency_p50_ms": statistics.median(ordered),
            "latency_p99_ms": percentile(ordered, 0.99),
            "latency_max_ms": ordered[-1],
            "samples_acked": device.acked,
            "client_messages": messages,
            "client_missed": missed,
            "rss_mb": rss_kb["VmRSS"] / 1024,
            "rss_peak_mb": rss_kb["VmHWM"] / 1024,
        }
    )


def bench_live(group: Group, tmp: Path, memory_after: int = 100_000) -> None:
    trio.run(_measure, tmp, group, memory_after)
