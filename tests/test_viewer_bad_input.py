"""What the viewer answers to input it cannot use, on a real server over a real log: numbers
too large for the log are 404 (no such run) or 400 (out of range) with a JSON error, never a
500 with a traceback on stderr; no JSON answer carries NaN or Infinity; a WebSocket message over
the limit is closed with 1009 and the rest of it is not read into memory. Each case is a
request, the status and JSON body it gets, and nothing on stderr."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import struct
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.cli import main
from harness.link import Sample
from harness.runner.bus import Bus, SampleEvent
from harness.runner.context import RunContext, RunOptions
from harness.runner.observer import Observer
from harness.scenario.load import load
from harness.viewer.app import create_app
from harness.viewer.live import LiveState
from harness.viewer.server import start_server
from harness.viewer.transport import MAX_MESSAGE

TOO_BIG = "9223372036854775808"  # 2**63: one past SQLite's largest integer
HUGE = "100000000000000000000000"
RANGE = "out of range; unix seconds 0..253402300799 (1970 to 9999)"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log with one brownout run (virtual time) whose record holds a measured NaN and one of
    whose events holds an Infinity, as a run can store them (json writes both)."""
    db = tmp_path_factory.mktemp("bad-input") / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT record FROM runs WHERE id = 1").fetchone()
    record = json.loads(text)
    record["expectations"][0]["measured"] = math.nan
    conn.execute("UPDATE runs SET record = ? WHERE id = 1", (json.dumps(record),))
    (first,) = conn.execute("SELECT min(id) FROM events WHERE run = 1").fetchone()
    conn.execute("UPDATE events SET data = ? WHERE id = ?", ('{"peak": Infinity}', first))
    conn.commit()
    conn.close()
    return db


def live_state() -> LiveState:
    """A live run fed by hand, so that /ws answers."""
    scenario = load(Path("scenarios/brownout.toml"))
    bus = Bus()
    origin = trio.current_time()
    ctx = RunContext(scenario, RunOptions(), 7, origin, bus, Observer(scenario, origin, bus))
    live = LiveState(ctx)
    bus.subscribe(live.take)
    for seq in range(5):
        s = Sample(seq, 1, (seq + 1) * 100, 100, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 5, "ok")
        bus.publish(SampleEvent(s, seq / 10, (seq + 1) / 10, (seq + 1) / 10))
    return live


@pytest.fixture
async def served(log: Path) -> AsyncIterator[tuple[str, LiveState]]:
    live = live_state()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await start_server(nursery, create_app(live, log), "127.0.0.1", 0, stop)
        yield url, live
        await live.finish()
        live.hub.close_all()
        stop.set()


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: bytes) -> Any:
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are errors."""
    return json.loads(text, parse_constant=_refuse)


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


def finite(body: Any) -> bool:
    if isinstance(body, float):
        return math.isfinite(body)
    if isinstance(body, dict):
        return all(finite(v) for v in body.values())
    if isinstance(body, list):
        return all(finite(v) for v in body)
    return True


def whole_log(body: dict[str, Any]) -> bool:
    return body["from"] == 0 and body["source"] == "rollup_60" and sum(body["n"]) > 0


def no_such_run(run: str) -> dict[str, str]:
    return {"error": f"run {run}: no such run"}


CASES: list[tuple[str, int, dict[str, Any] | Callable[[Any], bool]]] = [
    # run ids SQLite cannot hold name no run
    (f"/api/runs/{TOO_BIG}", 404, no_such_run(TOO_BIG)),
    (f"/api/runs/{HUGE}", 404, no_such_run(HUGE)),
    (f"/api/runs/{TOO_BIG}/events", 404, no_such_run(TOO_BIG)),
    (f"/api/runs/{HUGE}/events", 404, no_such_run(HUGE)),
    ("/api/runs/9223372036854775807", 404, no_such_run("9223372036854775807")),
    # ... and as parameters they are out of range
    (
        f"/api/export.csv?run={TOO_BIG}",
        400,
        {"error": f"run={TOO_BIG}: must be 1..9223372036854775807"},
    ),
    (
        f"/api/runs/1/events?after={HUGE}",
        400,
        {"error": f"after={HUGE}: must be 0..9223372036854775807"},
    ),
    # times no log can hold are refused, not read as spans of nothing (or of NaN)
    ("/api/export.csv?from=1e20&to=1.1e20", 400, {"error": f"from='1e20': {RANGE}"}),
    ("/api/export.csv?from=-1.7e308&to=1.7e308", 400, {"error": f"from='-1.7e308': {RANGE}"}),
    ("/api/export.csv?from=-1.7e308", 400, {"error": f"from='-1.7e308': {RANGE}"}),
    ("/api/export.csv?from=1.7e308", 400, {"error": f"from='1.7e308': {RANGE}"}),
    ("/api/export.csv?from=0&to=1.7e308", 400, {"error": f"to='1.7e308': {RANGE}"}),
    ("/api/history?from=-1.7e308&to=1.7e308", 400, {"error": f"from='-1.7e308': {RANGE}"}),
    ("/api/history?from=1e20&to=1.1e20", 400, {"error": f"from='1e20': {RANGE}"}),
    (
        "/api/history?from=9999-12-31T23:59:59-01:00",
        400,
        {"error": f"from='9999-12-31T23:59:59-01:00': {RANGE}"},
    ),
    # the widest span there is works, in finite numbers
    ("/api/history?from=0&to=253402300799&points=10000", 200, whole_log),
    ("/api/history?to=600", 200, lambda body: body["from"] == 0 and body["t"] == []),
    # what the log holds as NaN or Infinity is null in the answer
    ("/api/runs/1", 200, lambda body: body["record"]["expectations"][0]["measured"] is None),
    (
        "/api/runs/1/events?limit=1",
        200,
        lambda body: body["events"][0]["data"] == {"peak": None},
    ),
]


@pytest.mark.parametrize(("path", "status", "expected"), CASES)
async def test_bad_numbers_are_answered_in_json_and_nothing_goes_to_stderr(
    served: tuple[str, LiveState],
    capfd: pytest.CaptureFixture[str],
    path: str,
    status: int,
    expected: dict[str, Any] | Callable[[Any], bool],
) -> None:
    url, _ = served
    code, kind, text = await trio.to_thread.run_sync(get, url.rstrip("/") + path)
    assert (code, kind) == (status, "application/json"), text
    body = strict_json(text)
    assert finite(body)
    if callable(expected):
        assert expected(body), body
    else:
        assert body == expected
    assert capfd.readouterr().err == ""


# --- WebSocket messages from a client ------------------------------------------------------


async def handshake(url: str) -> trio.SocketStream:
    host, port = url[len("http://") :].rstrip("/").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return stream


class Frames:
    """The server's frames (unmasked) off a raw stream, after its handshake answer."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.handshake = b""

    async def _need(self, n: int) -> bool:
        while len(self.buffer) < n:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset: what came before it is all there is
                return False
            if not data:
                return False
            self.buffer += data
        return True

    async def answer(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            assert await self._need(len(self.buffer) + 1), self.buffer
        self.handshake, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return self.handshake

    async def next(self) -> tuple[int, bytes] | None:
        """(opcode, payload) of the next frame, or None at the end of the stream."""
        if not await self._need(2):
            return None
        length, start = self.buffer[1] & 0x7F, 2
        if length == 126:
            if not await self._need(4):
                return None
            (length,), start = struct.unpack("!H", self.buffer[2:4]), 4
        elif length == 127:
            if not await self._need(10):
                return None
            (length,), start = struct.unpack("!Q", self.buffer[2:10]), 10
        if not await self._need(start + length):
            return None
        opcode, payload = self.buffer[0] & 0x0F, self.buffer[start : start + length]
        self.buffer = self.buffer[start + length :]
        return opcode, payload


def frame_header(size: int, mask: bytes) -> bytes:
    """A client's text frame header for `size` bytes, masked with `mask`."""
    if size < 126:
        return bytes([0x81, 0x80 | size]) + mask
    if size < 1 << 16:
        return bytes([0x81, 0x80 | 126]) + struct.pack("!H", size) + mask
    return bytes([0x81, 0x80 | 127]) + struct.pack("!Q", size) + mask


async def send_message(stream: trio.SocketStream, size: int) -> int:
    """Send one text message of `size` bytes; returns how many of them the server let in
    (the connection may be cut under it)."""
    mask = b"\x11\x22\x33\x44"
    chunk = bytes(c ^ mask[i % 4] for i, c in enumerate(b"x" * 65536))  # 65536 % 4 == 0
    sent = 0
    try:
        await stream.send_all(frame_header(size, mask))
        while sent < size:
            n = min(len(chunk), size - sent)
            with trio.move_on_after(3) as stalled:
                await stream.send_all(chunk[:n])
            if stalled.cancelled_caught:  # the server takes no more: it stopped reading
                break
            sent += n
    except trio.BrokenResourceError:
        pass
    return sent


async def close_code(frames: Frames) -> int | None:
    """The code of the server's close frame, reading past its other messages; None if the
    stream ends without one."""
    while (frame := await frames.next()) is not None:
        opcode, payload = frame
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0]
    return None


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    ("size", "code"),
    [
        (20_000_000, 1009),  # the fault campaign's: it must not be read into memory
        (MAX_MESSAGE + 1, 1009),
        (MAX_MESSAGE, None),  # the limit itself is taken (and dropped): the page stays
    ],
)
async def test_a_websocket_message_over_the_limit_is_closed_with_1009(
    served: tuple[str, LiveState], capfd: pytest.CaptureFixture[str], size: int, code: int | None
) -> None:
    url, live = served
    before = rss_mb()
    with trio.fail_after(20):
        stream = await handshake(url)
        frames = Frames(stream)
        assert (await frames.answer()).startswith(b"HTTP/1.1 101 ")
        opcode, hello = await frames.next() or (0, b"")
        assert opcode == 0x1 and json.loads(hello)["type"] == "hello"
        sent = await send_message(stream, size)
        if code is None:
            assert sent == size
            live.hub.slot("stats", {"still": "here"})  # the page still gets what comes
            while (frame := await frames.next()) is not None:
                if frame[0] == 0x1 and json.loads(frame[1]).get("data") == {"still": "here"}:
                    break
            assert frame is not None and len(live.hub.clients) == 1
        else:
            assert await close_code(frames) == code
        if size > 1_000_000:
            # The server cut the connection long before the message was through (what the
            # client got out is what the sockets' buffers held), and did not keep it.
            assert sent < size / 4
            assert rss_mb() - before < 5
        await stream.aclose()
    assert capfd.readouterr().err == ""
