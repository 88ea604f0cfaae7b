"""`harness bench`: throughput and latency figures, measured side by side in one run so the
ratios mean something on any machine (absolute numbers move with the machine's load)."""

from __future__ import annotations

import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bus import Bus, SampleEvent
from harness.link import Hello, HostLink, Sample, SampleReceived, encode
from harness.store import queries
from harness.store.db import Batch, create_run, open_for_writing, sample_row, write_batch
from harness.store.rollup import rollup_rows

FRAME_BYTES_2MBAUD = 200_000  # 2 Mbaud, 8N1: 200 kB/s
NAIVE_FRAMES = 2000


def _frames(n: int) -> bytes:
    hello = encode(Hello(boot=1, seq=0, last_cmd=-1, interval=10, win=8))
    body = b"".join(
        encode(
            Sample(
                i, 1, (i + 1) * 10, 10, 5.0 + (i % 7) / 1000, 0.25, 1.25, 4.99, 5.01, 0.26, 10, "ok"
            )
        )
        for i in range(n)
    )
    return hello + body


def _timed(fn: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - start


def bench_link(n: int = 200_000) -> dict[str, float]:
    """Decode + HostLink (CRC, JSON, checks, ARQ, ACKs) on one core, in-order frames."""
    data = _frames(n)
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]

    def run() -> int:
        host = HostLink(now=0.0)
        got = 0
        for i, chunk in enumerate(chunks):
            for ev in host.feed(chunk, i * 1e-4):
                got += isinstance(ev, SampleReceived)
            host.data_to_send()
        return got

    got, took = _timed(run)
    assert got == n, got
    frame_rate = FRAME_BYTES_2MBAUD / (len(data) / n)
    return {
        "frames_per_s": n / took,
        "bytes_per_frame": len(data) / n,
        "x_2mbaud_line": n / took / frame_rate,
    }


def bench_ingest(n: int = 100_000) -> dict[str, float]:
    """The whole path a frame takes (decode, CRC, checks, ARQ, bus, store rows and rollups,
    batched SQLite writes), against the seeds' naive loop on the same frames: readline ->
    json.loads -> INSERT + commit per sample, with sqlite3's defaults (rollback journal,
    synchronous=FULL), as a first version of such a tool writes it."""
    data = _frames(n)
    lines = data.splitlines(keepends=True)[1:NAIVE_FRAMES]  # it commits each: a sample will do
    with tempfile.TemporaryDirectory() as tmp:
        naive = sqlite3.connect(Path(tmp) / "naive.db")  # defaults: rollback journal, full sync
        naive.execute(
            "CREATE TABLE power_log (seq INT, ts INT, v REAL, a REAL, w REAL, status TEXT)"
        )

        def naive_loop() -> int:
            for line in lines:
                obj = json.loads(line.split(b"*")[0])
                naive.execute(
                    "INSERT INTO power_log VALUES (?, ?, ?, ?, ?, ?)",
                    (obj["seq"], obj["ts"], obj["v"], obj["a"], obj["w"], obj["status"]),
                )
                naive.commit()
            return len(lines)

        naive_n, naive_took = _timed(naive_loop)
        conn = open_for_writing(Path(tmp) / "ingest.db")
        run = create_run(conn, "run", "bench", "mock", 0, 0.0)
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]

        def ours() -> int:
            host, bus = HostLink(now=0.0), Bus()
            rows: list[tuple[Any, ...]] = []

            def take(item: object) -> None:
                if isinstance(item, SampleEvent):
                    rows.append(sample_row(run, item.sample, item.end, item.arrived))

            bus.subscribe(take)
            written = 0
            for i, chunk in enumerate(chunks):
                now = i * 1e-4
                for ev in host.feed(chunk, now):
                    if isinstance(ev, SampleReceived):
                        s = ev.sample
                        bus.publish(SampleEvent(s, (s.ts - s.dt) / 1000, s.ts / 1000, now))
                host.data_to_send()
                if len(rows) >= 1000:
                    write_batch(conn, Batch(rows, [], rollup_rows(rows)))
                    written += len(rows)
                    rows = []
            write_batch(conn, Batch(rows, [], rollup_rows(rows)))
            return written + len(rows)

        ours_n, ours_took = _timed(ours)
    assert ours_n == n and naive_n == len(lines)
    return {
        "ingest_frames_per_s": n / ours_took,
        "naive_frames_per_s": naive_n / naive_took,
        "x_naive": (n / ours_took) / (naive_n / naive_took),
        "x_2mbaud_line": n / ours_took / (FRAME_BYTES_2MBAUD / (len(data) / n)),
    }


def _fill(conn: sqlite3.Connection, run: int, count: int, t0: float, step: float) -> float:
    rows: list[tuple[Any, ...]] = []
    start = time.perf_counter()
    for i in range(count):
        t = t0 + i * step
        v = 5.0 + (i % 100) / 1000
        rows.append(
            (run, 1, i, t, t, i * 100, 100, v, 0.25, v * 0.25, v - 0.002, v + 0.002, 0.26, 50, "ok")
        )
        if len(rows) == 1000:
            write_batch(conn, Batch(rows, [], rollup_rows(rows)))
            rows = []
    write_batch(conn, Batch(rows, [], rollup_rows(rows)))
    return time.perf_counter() - start


def bench_store(hours: float = 48.0, rate: float = 10.0) -> dict[str, float]:
    """Batched inserts (samples + both rollups, 1,000 rows a transaction) while filling 48 h
    at 10 Hz, then history over the whole span at 2,000 points, and over shorter spans."""
    count = int(hours * 3600 * rate)
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_for_writing(Path(tmp) / "store.db")
        run = create_run(conn, "run", "bench", "mock", 0, 1.8e9)
        took = _fill(conn, run, count, 1.8e9, 1 / rate)
        reader = sqlite3.connect(Path(tmp) / "store.db")
        results = {"samples": float(count), "insert_rows_per_s": count / took}
        end = 1.8e9 + hours * 3600
        for label, span in (("48h", hours * 3600), ("6h", 6 * 3600), ("30min", 1800)):
            times = []
            for _ in range(5):
                start = time.perf_counter()
                out = queries.history(reader, end - span, end, 2000)
                times.append(time.perf_counter() - start)
            results[f"history_{label}_ms"] = statistics.median(times) * 1000
            results[f"history_{label}_points"] = float(len(out["t"]))
    return results


def run_all(quick: bool = False) -> dict[str, dict[str, float]]:
    return {
        "link": bench_link(50_000 if quick else 200_000),
        "ingest": bench_ingest(20_000 if quick else 100_000),
        "store": bench_store(2.0 if quick else 48.0),
        "viewer": _bench_viewer(5.0 if quick else 20.0),
    }


def _bench_viewer(seconds: float) -> dict[str, float]:
    from harness.viewer.bench import bench_viewer

    return bench_viewer(seconds)


def report(results: dict[str, dict[str, float]]) -> str:
    lines = []
    for group, figures in results.items():
        for key, value in figures.items():
            lines.append(f"{group:7} {key:24} {value:14,.2f}")
    return "\n".join(lines)
