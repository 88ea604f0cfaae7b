"""Scale: N boards at 115,200 baud each, every line full, in one `harness monitor --target
board` process with the store and the viewer.

This process serves N pseudo-terminals as the boards (a DeviceLink each, the firmware's
protocol, 10 ms reports: more than the line carries, so each device's window decides what it
sends and its UART is never idle) and writes each line's bytes no faster than 115,200 baud 8N1
carries them, a few milliseconds' worth at a time as a USB-serial bridge hands them over. One
trio-websocket client on `/ws` takes the viewer's `measurements` messages: latency is the write
of a frame's last byte -> the message carrying its sample in the client's hands (one clock,
this process's).
Afterwards the store says what arrived: each device's acknowledged samples once each.

A line's fill is the bytes it carried over what 115,200 baud carries in the same time; a device
whose line is not full is not at the rate the goal is about, so the least full line is a goal
of its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from harness.bench.goals import Group
from harness.bench.live import memory_kb, percentile
from harness.link.commands import Settings
from harness.link.device import DeviceLink, Readings

BAUD = 115_200
LINE_RATE = BAUD / 10
"""Bytes a second the line carries (8N1: a start bit, 8 data bits, a stop bit)."""
INTERVAL_MS = 10
"""The protocol's shortest report interval: 100 reports a second, more than the line carries."""
TICK = 0.005
"""Seconds between a board's turns (read what the host sent, take a reading, put on the line
what it carried since the last turn): what a USB-serial bridge hands over at once."""
WARMUP = 2.0
"""Seconds after the last board heard from the harness before the figures are taken: every
port open and its link in step."""
START_TIMEOUT = 30.0
"""Seconds the monitor has to serve its viewer and to open every board's port."""
STOP_TIMEOUT = 30.0
P99_MAX_MS = 50.0
RSS_MAX_MB = 100.0
FILL_MIN = 0.95
GOAL_DEVICES = 64
"""The goal's N: the figures of this many devices are the group's goals."""
READING = Readings.one(5.0, 0.25, 1.25)


@dataclass
class Board:
    """One board on its pty: a DeviceLink whose clock starts when the harness first speaks to
    it, and a UART that puts on the line no more than the line carries."""

    name: str
    boot: int
    master: int
    slave: int
    path: str
    link: DeviceLink | None = None
    t0: float = 0.0
    line_time: float = 0.0
    next_reading: float = INTERVAL_MS / 1000
    """Device seconds of the next reading."""
    """Where the line is: the wall time by which it has carried every byte given to it."""
    line: bytes = b""
    """The rest of the line the UART is sending."""
    line_seq: int | None = None
    """The sample that line carries, if it is one."""
    unsent: bytes = b""
    """Bytes the line carried that the pty did not take yet (the harness not reading)."""
    ends: list[tuple[int, int]] = field(default_factory=list)
    """(bytes written when it is through, seq) of sample lines not yet fully written."""
    written: int = 0
    """Bytes written to the pty."""
    first_written: dict[int, float] = field(default_factory=dict)
    """perf_counter when each sample's frame was first through, by seq."""

    @classmethod
    def open(cls, name: str, boot: int) -> Board:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        # The port's end stays open here too, so this end never sees a hang-up while the
        # harness opens the port (as harness.transports.pty.Pty does).
        return cls(name, boot, master, slave, os.ttyname(slave))

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def acked(self) -> int:
        """Samples the harness acknowledged (seqs from 0)."""
        if self.link is None:
            return 0
        window = self.link.window
        return window[0] if window else len(self.first_written)

    def turn(self, now: float) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            data = b""
        link = self.link
        if link is None:
            if not data:
                return  # the port is not open yet: the board starts when the host speaks
            link = self.link = DeviceLink(
                now=0.0, boot=self.boot, settings=Settings(interval_ms=INTERVAL_MS)
            )
            self.t0 = self.line_time = now
        device_now = now - self.t0
        if data:
            link.feed(data, device_now)
        # A reading at each interval's end, at its own time (not the turn's): a report closes
        # every interval, as the firmware's do, whenever its window has room.
        while self.next_reading <= device_now:
            link.add_readings(self.next_reading, READING)
            self.next_reading += INTERVAL_MS / 1000
        link.poll(device_now)
        self._transmit(link, now)

    def _transmit(self, link: DeviceLink, now: float) -> None:
        out = [self.unsent] if self.unsent else []
        budget = int((now - self.line_time) * LINE_RATE)
        due = self.written + len(self.unsent)
        while budget > 0:
            if not self.line:
                self.line = link.next_line()
                if not self.line:
                    self.line_time = now  # idle: a line carries nothing it was not given
                    break
                self.line_seq = _sample_seq(self.line)
            piece = self.line[:budget]
            self.line = self.line[len(piece) :]
            budget -= len(piece)
            self.line_time += len(piece) / LINE_RATE
            out.append(piece)
            due += len(piece)
            if not self.line and self.line_seq is not None:
                self.ends.append((due, self.line_seq))
        if not out:
            return
        data = b"".join(out)
        try:
            sent = os.write(self.master, data)
        except BlockingIOError:
            sent = 0
        self.unsent = data[sent:]
        self.written += sent
        while self.ends and self.ends[0][0] <= self.written:
            self.first_written.setdefault(self.ends.pop(0)[1], now)


def _sample_seq(line: bytes) -> int | None:
    """The seq of a sample's frame; None for any other line (a hello, a reply)."""
    if not line.startswith(b'{"seq":'):
        return None
    return int(line[7 : line.index(b",", 7)])


@dataclass
class Result:
    """One N's figures."""

    devices: int
    seconds: float
    frames_per_s: float
    latencies_ms: list[float]
    client_messages: int
    """Samples the page got (of every `measurements` message)."""
    client_missed: int
    rss_mb: float
    rss_peak_mb: float
    harness_cpu: float
    """The monitor's CPU seconds (all its threads) per wall second over the measurement."""
    harness_sys: float
    """... of which in the kernel (its reads and writes of the ports and the socket)."""
    bench_cpu: float
    """This process's, over the same time: the boards and the client."""
    fill_min: float
    fill_mean: float
    late_p99_ms: float
    """How late the boards' turns came (this process's own load)."""
    lost: int
    duplicated: int
    acked: int
    stored: int

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return percentile(ordered, q) if ordered else float("nan")

    @property
    def met(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.p(0.99) <= P99_MAX_MS
            and self.rss_mb <= RSS_MAX_MB
            and self.fill_min >= FILL_MIN
        )


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def _viewer_url(stream: trio.abc.ReceiveStream, seen: list[str]) -> str:
    """Read the monitor's output up to its viewer line; the WebSocket's URL."""
    buf = b""
    with trio.fail_after(START_TIMEOUT):
        while True:
            data = await stream.receive_some(4096)
            if not data:
                raise RuntimeError("bench: the monitor ended before serving: " + " | ".join(seen))
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                seen.append(line.decode(errors="replace"))
                if seen[-1].startswith("viewer: http://"):
                    url = seen[-1].split()[1]
                    return url.replace("http://", "ws://").rstrip("/") + "/ws"


async def _drain(stream: trio.abc.ReceiveStream, seen: list[str]) -> None:
    """Keep reading the monitor's output (a full pipe would stop it), the last lines kept."""
    while data := await stream.receive_some(65536):
        seen.append(data.decode(errors="replace"))
        del seen[:-20]


class Client:
    """The `/ws` page: each sample of a `measurements` message matched to its frame by device
    and seq (by boot while the sample does not name its device: each board has a boot of its
    own)."""

    def __init__(self, boards: list[Board]) -> None:
        self.by_name = {b.name: b for b in boards}
        self.by_boot = {str(b.boot): b for b in boards}
        self.window: tuple[float, float] | None = None
        self.latencies: list[float] = []
        self.messages = 0
        """Samples the page got."""
        self.missed = 0

    def take(self, text: str, now: float) -> None:
        """A `/ws` message that came at `now`: each sample a `measurements` message carries
        (any other message is not a sample's)."""
        if not text.startswith('{"type":"measurements"'):
            return
        window = self.window
        for item in json.loads(text)["items"]:
            self.messages += 1
            self.missed += item.get("missed", 0)
            data = item["data"]
            name = item.get("device", data.get("device"))
            if name is not None:
                board = self.by_name.get(name)
            else:
                board = self.by_boot.get(str(data.get("boot")))
            if board is None or "seq" not in data:
                continue
            written = board.first_written.get(data["seq"])
            if written is not None and window is not None and window[0] <= written < window[1]:
                self.latencies.append((now - written) * 1000)

    async def run(self, url: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            async with open_websocket_url(url) as ws:
                while True:
                    text = await ws.get_message()
                    self.take(str(text), time.perf_counter())


async def _boards_run(boards: list[Board], late: list[float]) -> None:
    """Every board's turn each TICK, in one task (the lateness of each round is kept)."""
    due = time.perf_counter()
    while True:
        due += TICK
        await trio.sleep(max(0.0, due - time.perf_counter()))
        now = time.perf_counter()
        late.append(now - due)
        if now - due > TICK:
            due = now  # behind by more than a turn: the lines carry what was due at once
        for board in boards:
            board.turn(now)


def _store_counts(db: Path) -> dict[str, tuple[int, int]]:
    """Rows and distinct (boot, seq) of each device's samples, by device."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT device, count(*), count(DISTINCT boot || '-' || seq) FROM samples "
            "GROUP BY device"
        ).fetchall()
    finally:
        conn.close()
    return {name: (count, distinct) for name, count, distinct in rows}


def _stored_below(db: Path, board: Board, below: int) -> int:
    """How many of the board's seqs below `below` (those it had acknowledged) the log holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (count,) = conn.execute(
            "SELECT count(DISTINCT seq) FROM samples WHERE device = ? AND boot = ? AND seq < ?",
            (board.name, board.boot, below),
        ).fetchone()
    finally:
        conn.close()
    return int(count)


async def _measure(tmp: Path, n: int, seconds: float) -> Result:
    boards: list[Board] = []
    try:
        for i in range(n):
            boards.append(Board.open(f"d{i + 1:02d}", 100 + i))
        return await _measure_boards(tmp, boards, seconds)
    finally:
        for board in boards:
            board.close()


async def _measure_boards(tmp: Path, boards: list[Board], seconds: float) -> Result:
    db = tmp / f"devices-{len(boards)}.db"
    stderr = tmp / f"devices-{len(boards)}.stderr"
    serials = [a for b in boards for a in ("--serial", f"{b.name}={b.path}")]
    argv = [sys.executable, "-m", "harness", "monitor", "--target", "board", *serials]
    argv += ["--bind", "127.0.0.1:0", "--db", str(db)]
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=err)
    late: list[float] = []
    seen: list[str] = []
    client = Client(boards)
    try:
        assert process.stdout is not None
        url = await _viewer_url(process.stdout, seen)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, process.stdout, seen)
            nursery.start_soon(_boards_run, boards, late)
            nursery.start_soon(client.run, url)
            with trio.fail_after(START_TIMEOUT):
                while any(b.link is None for b in boards):
                    if process.poll() is not None:
                        tail = stderr.read_text(errors="replace").strip().splitlines()[-3:]
                        raise RuntimeError(
                            f"bench: the monitor exited with {process.returncode} before every "
                            f"board started: {' | '.join(tail)}"
                        )
                    await trio.sleep(0.05)
            await trio.sleep(WARMUP)
            start = time.perf_counter()
            client.window = (start, start + seconds)
            written0 = [b.written for b in boards]
            cpu0, bench0 = _cpu_seconds(process.pid), time.process_time()
            del late[:]
            await trio.sleep(seconds)
            took = time.perf_counter() - start
            cpu1, bench1 = _cpu_seconds(process.pid), time.process_time()
            rss = memory_kb(process.pid)
            lateness = sorted(late)
            fills = [
                (b.written - w0) / (LINE_RATE * took)
                for b, w0 in zip(boards, written0, strict=True)
            ]
            frames = sum(
                1 for b in boards for at in b.first_written.values() if start <= at < start + took
            )
            # Ctrl-C: the monitor drains its links (the boards still answer) and records.
            process.send_signal(signal.SIGINT)
            with trio.fail_after(STOP_TIMEOUT):
                code = await process.wait()
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if code != 0:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"bench: the monitor exited with {code}: {' | '.join(tail)}")
    counts = _store_counts(db)
    lost = duplicated = acked = stored = 0
    for board in boards:
        count, distinct = counts.get(board.name, (0, 0))
        duplicated += count - distinct
        stored += distinct
        below = board.acked
        acked += below
        lost += below - _stored_below(db, board, below)
    return Result(
        devices=len(boards),
        seconds=took,
        frames_per_s=frames / took,
        latencies_ms=client.latencies,
        client_messages=client.messages,
        client_missed=client.missed,
        rss_mb=rss.get("VmRSS", 0) / 1024,
        rss_peak_mb=rss.get("VmHWM", 0) / 1024,
        harness_cpu=(sum(cpu1) - sum(cpu0)) / took,
        harness_sys=(cpu1[1] - cpu0[1]) / took,
        bench_cpu=(bench1 - bench0) / took,
        fill_min=min(fills),
        fill_mean=statistics.fmean(fills),
        late_p99_ms=percentile(lateness, 0.99) * 1000 if lateness else 0.0,
        lost=lost,
        duplicated=duplicated,
        acked=acked,
        stored=stored,
    )


def measure(tmp: Path, n: int, seconds: float) -> Result:
    """One N: the monitor started, measured for `seconds` and stopped."""
    folder = tmp / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    return trio.run(_measure, folder, n, seconds)


def bench_devices(
    group: Group,
    tmp: Path,
    counts: tuple[int, ...],
    seconds: float,
    progress: Callable[[str], None] = lambda line: None,
) -> None:
    """Each N of `counts` in turn, up to the first that misses the goal after the goal's N; the
    goals are GOAL_DEVICES' figures (or the largest N's below it)."""
    results: list[Result] = []
    for n in counts:
        r = measure(tmp, n, seconds)
        results.append(r)
        progress(
            f"bench: devices {n}: {r.frames_per_s:,.0f} frames/s, p99 {r.p(0.99):.1f} ms, "
            f"RSS {r.rss_mb:.1f} MB, fill {r.fill_min:.3f}, lost {r.lost}, dup {r.duplicated}"
        )
        if not r.met and n >= GOAL_DEVICES:
            break
    at_goal = [r for r in results if r.devices == GOAL_DEVICES] or results[-1:]
    goal = at_goal[0]
    label = f"{goal.devices} devices"
    group.goal(f"{label}: samples lost", goal.lost, "==", 0)
    group.goal(f"{label}: samples duplicated", goal.duplicated, "==", 0)
    group.goal(f"{label}: frame -> browser p99", goal.p(0.99), "<=", P99_MAX_MS, "ms")
    group.goal(f"{label}: harness RSS", goal.rss_mb, "<=", RSS_MAX_MB, "MB")
    group.goal(f"{label}: least full line", goal.fill_min, ">=", FILL_MIN)
    met = [r.devices for r in results if r.met]
    group.figures["largest_n_met"] = max(met) if met else 0
    group.figures["seconds_each"] = seconds
    for r in results:
        key = f"n{r.devices}"
        group.figures.update(
            {
                f"{key}_frames_per_s": r.frames_per_s,
                f"{key}_p50_p99_ms": [r.p(0.5), r.p(0.99)],
                f"{key}_rss_mb": r.rss_mb,
                f"{key}_lost_dup": [r.lost, r.duplicated],
                f"{key}_fill_min_mean": [r.fill_min, r.fill_mean],
                f"{key}_harness_cpu_pct": r.harness_cpu * 100,
                f"{key}_harness_sys_pct": r.harness_sys * 100,
                f"{key}_bench_cpu_pct": r.bench_cpu * 100,
                f"{key}_feed_late_p99_ms": r.late_p99_ms,
                f"{key}_client_msgs_missed": [r.client_messages, r.client_missed],
                f"{key}_acked_stored": [r.acked, r.stored],
            }
        )
