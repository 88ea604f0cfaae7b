"""Ingest: the path every frame takes in a run — decode, CRC and checks, HostLink's ARQ, the
bus, the store's batched writes through `trio.to_thread` and the viewer's live state with one
client — over an in-memory link, beside the frame rate of a 2 Mbaud and a 115,200 baud line and
beside a naive readline -> json.loads -> INSERT + commit loop run in the same process on the
same frames."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

import trio

from harness.bench.goals import Group
from harness.link import Hello, HostEvent, HostLink, Sample, SampleReceived, encode
from harness.runner.bus import Bus, SampleEvent
from harness.runner.observer import DeviceClock
from harness.runner.session import HostSession
from harness.store.db import create_run, open_for_writing
from harness.store.writer import StoreWriter
from harness.transports.memory import memory_stream_pair
from harness.viewer.live import LiveState

if TYPE_CHECKING:
    from harness.runner.context import RunContext

LINES = {"2 Mbaud": 2_000_000, "115,200 baud": 115_200}
"""Serial lines the ingest rate is set against (8N1: 10 bits a byte)."""
CHUNK = 4096
"""Bytes the device side writes at once (a serial read returns what has arrived)."""


def frames(n: int, boot: int = 1, interval_ms: int = 10) -> bytes:
    """A hello, then `n` in-order samples as a device sends them (varied values)."""
    hello = encode(Hello(boot=boot, seq=0, last_cmd=-1, interval=interval_ms, win=8))
    return hello + b"".join(encode(sample(i, boot, interval_ms)) for i in range(n))


def sample(seq: int, boot: int = 1, interval_ms: int = 10) -> Sample:
    v = 5.0 + (seq % 7) / 1000
    return Sample(
        seq,
        boot,
        (seq + 1) * interval_ms,
        interval_ms,
        v,
        0.25,
        v * 0.25,
        v - 0.01,
        v + 0.01,
        0.26,
        10,
        "ok",
    )


def line_frames_per_s(baud: int, bytes_per_frame: float) -> float:
    return baud / 10 / bytes_per_frame


def link_only(data: bytes, n: int) -> float:
    """Frames/s through decode + HostLink alone (no trio, no store): the link core's share."""
    host = HostLink(now=0.0)
    got = 0
    start = time.perf_counter()
    for i in range(0, len(data), CHUNK):
        for ev in host.feed(data[i : i + CHUNK], i * 1e-7):
            got += isinstance(ev, SampleReceived)
        host.data_to_send()
    took = time.perf_counter() - start
    assert got == n, got
    return n / took


@dataclass
class _Context:
    """The things of a run the live state reads."""

    started: datetime
    origin: float

    @property
    def wall0(self) -> float:
        return self.started.timestamp()


RUNS = 5
"""Pipeline runs; the fastest counts (as timeit takes the best of five: slower runs measure the
machine's other load, not the code)."""


class _Run(NamedTuple):
    wall: float
    """Seconds from the first byte to the last row committed."""
    cpu: float
    """CPU seconds of the process (both threads) over the same time."""
    sent: int
    """Sample messages the viewer's sender took."""
    missed: int
    """Sample messages the viewer dropped for it (its queue full: backpressure)."""


async def _pipeline(data: bytes, n: int, db: Path) -> _Run:
    """The run's own pieces on an in-memory link, with one viewer page whose sender is
    scheduled as the server's is (a message, then its await)."""
    conn = open_for_writing(db)
    origin = trio.current_time()
    started = datetime.now(UTC)
    run = create_run(conn, "run", "bench-ingest", "mock", 0, started.timestamp())
    bus = Bus()
    writer = StoreWriter(conn, run, started.timestamp(), origin)
    bus.subscribe(writer.take)
    live = LiveState(cast("RunContext", _Context(started, origin)))
    bus.subscribe(live.take)
    client = live.hub.add()
    clock = DeviceClock()
    host_end, device_end = memory_stream_pair()
    all_in = trio.Event()
    written = trio.Event()
    got = 0
    sent_to_client = 0

    def on_event(ev: HostEvent) -> None:
        nonlocal got
        if isinstance(ev, SampleReceived):
            arrived = ev.at - origin
            start, end = clock.span(ev.sample, arrived)
            bus.publish(SampleEvent(ev.sample, start, end, arrived))
            got += 1
            if got == n:
                all_in.set()

    async def device() -> None:
        for i in range(0, len(data), CHUNK):
            await device_end.send_all(data[i : i + CHUNK])
        acks = 0
        while reply := await device_end.receive_some():  # the host's ACKs: read, not kept
            acks += len(reply)

    async def viewer_client() -> None:
        """The viewer's sender for one page (viewer.app), with a socket that never blocks."""
        nonlocal sent_to_client
        while True:
            await client.wait()
            client.take()
            sent_to_client = client.samples_sent
            await trio.lowlevel.checkpoint()  # where the sender awaits ws.send

    async def store() -> None:
        await writer.run()
        written.set()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store)
        nursery.start_soon(viewer_client)
        nursery.start_soon(HostSession(host_end, on_event).run)
        nursery.start_soon(device)
        await all_in.wait()
        writer.close()
        await written.wait()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        nursery.cancel_scope.cancel()
    rows = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    conn.close()
    assert rows == n, (rows, n)
    return _Run(wall, cpu, sent_to_client, client.missed)


def naive(lines: list[bytes], db: Path) -> float:
    """The seeds' first version of such a tool: frames/s of readline -> json.loads -> INSERT +
    commit per sample, with sqlite3's defaults (rollback journal, synchronous=FULL)."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE power_log (seq INT, ts INT, v REAL, a REAL, w REAL, status TEXT)")
    start = time.perf_counter()
    for line in lines:
        obj = json.loads(line.split(b"*")[0])
        conn.execute(
            "INSERT INTO power_log VALUES (?, ?, ?, ?, ?, ?)",
            (obj["seq"], obj["ts"], obj["v"], obj["a"], obj["w"], obj["status"]),
        )
        conn.commit()
    took = time.perf_counter() - start
    conn.close()
    return len(lines) / took


def bench_ingest(group: Group, tmp: Path, n: int, naive_n: int) -> None:
    data = frames(n)
    per_frame = len(data) / (n + 1)
    link_rate = link_only(data, n)
    runs = [trio.run(_pipeline, data, n, tmp / f"ingest{i}.db") for i in range(RUNS)]
    best = min(runs, key=lambda r: r.wall)
    rate = n / best.wall
    naive_rate = naive(data.splitlines(keepends=True)[1 : naive_n + 1], tmp / "naive.db")
    two_mbaud = line_frames_per_s(LINES["2 Mbaud"], per_frame)
    group.goal("x a 2 Mbaud line", rate / two_mbaud, ">=", 20, "x")
    group.goal("x the naive loop", rate / naive_rate, ">=", 10, "x")
    group.figures.update(
        {
            "frames": n,
            "bytes_per_frame": per_frame,
            "ingest_frames_per_s": rate,
            "ingest_runs_frames_per_s": [n / r.wall for r in runs],
            "ingest_frames_per_cpu_s": n / best.cpu,
            "x_115200_line": rate / line_frames_per_s(LINES["115,200 baud"], per_frame),
            "line_2mbaud_frames_per_s": two_mbaud,
            "naive_frames_per_s": naive_rate,
            "link_core_frames_per_s": link_rate,
            "viewer_samples": best.sent,
            "viewer_missed": best.missed,
        }
    )
