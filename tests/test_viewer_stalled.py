"""WebSocket clients that stop reading: one whose messages are not taken within the send limit
is dropped while the others go on, and the end of a run is on time whatever the clients do (a
real `harness run` process with a client that completes the handshake and never reads exits
with the scenario's end, its drain and the viewer's shutdown deadline, with the same exit code
and verdict table as without that client)."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from harness.link import Sample
from harness.runner.bus import Bus, SampleEvent
from harness.runner.context import RunContext, RunOptions
from harness.runner.observer import Observer
from harness.runner.run import DRAIN_MAX
from harness.scenario.load import parse
from harness.viewer.app import create_app
from harness.viewer.live import LiveState
from harness.viewer.server import SHUTDOWN_DEADLINE, start_server

REPO = Path(__file__).resolve().parent.parent
DURATION = 4.0

STALL = f"""\
[scenario]
name = "viewer-stall"
duration = "{DURATION}s"
seed = 5

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25

[[step]]
at = "0.2s"
send = {{ cmd = "set_interval", value = 10 }}

[[expect]]
link = {{ lost = 0, duplicated = 0, commands_failed = 0 }}
"""
"""A short scenario at 100 samples a second: far more than a stalled socket's buffers hold."""

MARGIN = 3.0
"""Seconds allowed beyond the scenario, its drain and the shutdown deadline (process start
and exit, the verdict)."""


class Terminal:
    """The child's stdout on a pseudo-terminal, read without ever blocking for long."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.text = ""

    def pump(self, timeout: float) -> bool:
        """Read what is there within `timeout` seconds; False once the child's side closed."""
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0.0))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every copy of the slave side is closed
            return False
        if not data:
            return False
        self.text += data.decode(errors="replace")
        return True

    def wait_for(self, pattern: str, deadline: float) -> re.Match[str]:
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if not self.pump(deadline - time.monotonic()):
                break
        found = re.search(pattern, self.text)
        assert found, f"no {pattern!r} in the run's output: {self.text!r}"
        return found


def stalled_websocket(host: str, port: int) -> socket.socket:
    """A raw WebSocket client on /ws with a small receive buffer that reads the handshake's
    answer, byte by byte so as to take nothing more, and then nothing at all."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
    sock.settimeout(5.0)
    sock.connect((host, port))
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    answer = b""
    while not answer.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"the server closed during the handshake: {answer!r}"
        answer += byte
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    return sock


async def test_a_page_that_takes_no_message_within_the_send_limit_is_dropped(
    tmp_path: Path,
) -> None:
    """Samples at 2 kHz to two pages: the one that never reads is dropped once a send to it has
    waited the limit (its socket closed, the hub rid of it); the one that reads is not, and
    still gets every sample after that."""
    scenario = parse(STALL, tmp_path / "stall.toml")
    bus = Bus()
    origin = trio.current_time()
    ctx = RunContext(scenario, RunOptions(), 5, origin, bus, Observer(scenario, origin, bus))
    live = LiveState(ctx)
    bus.subscribe(live.take)
    limit = 0.3
    stop = trio.Event()
    seqs: list[int] = []

    async def publish(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        for seq in itertools.count():
            s = Sample(seq, 1, seq + 1, 1, 5.0, 0.25, 1.25, 4.99, 5.01, 0.26, 1, "ok")
            bus.publish(SampleEvent(s, seq / 1000, (seq + 1) / 1000, trio.current_time() - origin))
            await trio.sleep(0.0005)

    async def read(url: str, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_websocket_url(url.replace("http://", "ws://") + "ws") as ws:
            task_status.started()
            while True:
                message = json.loads(await ws.get_message())
                if message["type"] == "measurements":
                    seqs.extend(item["data"]["seq"] for item in message["items"])

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await start_server(
                nursery, create_app(live, None, send_timeout=limit), "127.0.0.1", 0, stop
            )
            host, port = url[len("http://") : -1].split(":")
            stalled = await trio.to_thread.run_sync(stalled_websocket, host, int(port))
            await nursery.start(read, url)
            await nursery.start(publish)
            while len(live.hub.clients) == 2:
                await trio.sleep(0.01)
            dropped = trio.current_time()
            reading = len(seqs)
            while len(seqs) < reading + 200:
                await trio.sleep(0.01)
            assert len(live.hub.clients) == 1  # the one that reads is still there
            # The dropped page's socket is closed: what the kernel still holds, then the end.
            await trio.to_thread.run_sync(read_to_the_end, stalled)
            stalled.close()
            nursery.cancel_scope.cancel()
    # It got every sample in order, none missed, from before the other page was dropped to after.
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert dropped - origin > limit


def read_to_the_end(sock: socket.socket) -> None:
    """Read until the server has closed the connection (end of stream, or reset); a server
    that keeps it open fails the read with a timeout."""
    sock.settimeout(5.0)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass


def test_a_websocket_client_that_never_reads_does_not_keep_the_run_alive(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "stall.toml"
    scenario.write_text(STALL)
    db = tmp_path / "h.db"
    errors = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "harness", "run", str(scenario), "--bind", "127.0.0.1:0"]
    master, slave = os.openpty()
    client: socket.socket | None = None
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [*command, "--db", str(db)],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=err,
            cwd=REPO,
        )
    os.close(slave)
    terminal = Terminal(master)
    try:
        url = terminal.wait_for(r"viewer: http://([\d.]+):(\d+)/", time.monotonic() + 30)
        listening = time.monotonic()  # the scenario starts right after the viewer listens
        client = stalled_websocket(url[1], int(url[2]))
        ended = listening + DURATION
        bar = ended + DRAIN_MAX + SHUTDOWN_DEADLINE + MARGIN
        while proc.poll() is None and time.monotonic() < bar:
            if not terminal.pump(min(0.1, bar - time.monotonic())):
                proc.wait(timeout=max(bar - time.monotonic(), 0.1))
        exited = time.monotonic()
        code = proc.poll()
        assert code is not None, (
            f"still running {exited - ended:.1f} s after the scenario's end with a client that "
            "does not read"
        )
        while terminal.pump(0.2):  # the rest of what it printed
            pass
        assert code == 0, terminal.text
        assert re.search(r"viewer-stall: PASS +\(4 s scenario", terminal.text), terminal.text
        assert re.search(r"PASS +link: lost <= 0", terminal.text), terminal.text
        assert "delivered" in terminal.text and "lost 0" in terminal.text
        assert errors.read_text() == ""
        print(f"exited {exited - ended:.2f} s after the scenario's end")
    finally:
        if client is not None:
            client.close()
        proc.kill()
        proc.wait(timeout=10)
        os.close(master)
