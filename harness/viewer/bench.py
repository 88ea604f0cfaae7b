"""`harness bench`'s viewer group: a real `harness run` of the mock (clean link, one sample
every 20 ms) with the viewer on a free loopback port, a WebSocket client in this process, and
the run's resident memory read from /proc while the client is connected.

Latency is frame arrival -> client: the server stamps each sample with the wall-clock time its
frame was read (`arrived`), the client subtracts it from the wall-clock time the message is in
its hands. Both are this machine's clock."""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

SCENARIO = """\
[scenario]
name = "bench-viewer"
duration = "{seconds}s"
[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[step]]
at = "0.5s"
send = {{ cmd = "set_interval", value = {interval} }}
"""


def _memory_kb(pid: int) -> dict[str, int]:
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


async def _client(url: str, pid: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    peak = 0

    async def watch_memory() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _memory_kb(pid).get("VmHWM", 0))
            await trio.sleep(0.25)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_memory)
        async with open_websocket_url(url.replace("http://", "ws://") + "ws") as ws:
            with contextlib.suppress(ConnectionClosed):  # the run ended: so does the page
                while True:
                    message = json.loads(await ws.get_message())
                    if message["type"] == "measurement":
                        latencies.append((time.time() - message["data"]["arrived"]) * 1000)
        nursery.cancel_scope.cancel()
    return latencies, peak


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def bench_viewer(seconds: float = 20.0, interval_ms: int = 20) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bench.toml"
        scenario.write_text(SCENARIO.format(seconds=seconds, interval=interval_ms))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                str(scenario),
                "--bind",
                "127.0.0.1:0",
                "--db",
                str(Path(tmp) / "bench.db"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            url = ""
            for line in proc.stdout:
                if match := re.match(r"viewer: (http://\S+)", line):
                    url = match.group(1)
                    break
            if not url:
                raise RuntimeError("bench: the run printed no viewer URL")
            latencies, peak_kb = trio.run(_client, url, proc.pid)
            proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    ordered = sorted(latencies)
    return {
        "samples": float(len(ordered)),
        "latency_p50_ms": statistics.median(ordered),
        "latency_p99_ms": _percentile(ordered, 0.99),
        "latency_max_ms": ordered[-1],
        "run_rss_peak_mb": peak_kb / 1024,
    }
