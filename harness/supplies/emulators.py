"""Emulated supplies served where the real drivers can reach them: a SCPI supply on a
loopback TCP port and a Korad on a pseudo-terminal. For the tests and for the virtual bench
(whose emulated output feeds the simulator's rail through `EmulatedOutput.on_output`).

Both run until their nursery is cancelled and then let go of their port, so nothing outlives
the test or the run that started them:

    output = EmulatedOutput(load=50.0, on_output=feed_rail)
    port = await nursery.start(serve_scpi, ScpiInstrument(output))   # TCPIP::127.0.0.1::PORT::SOCKET
    path = await nursery.start(serve_korad, KoradInstrument(output))  # korad:PATH
"""

from __future__ import annotations

import trio

from harness.supplies.emulated import KoradInstrument, ScpiInstrument
from harness.transports.pty import Pty

MAX_LINE = 4096
"""A SCPI line longer than this is dropped (no instrument command is near it)."""
IDLE = 0.02
"""The pause after which the Korad emulator takes what it has received as complete: shorter
than the drivers' pacing between commands, longer than the bytes of one command take."""


async def serve_scpi(
    instrument: ScpiInstrument,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `instrument` on `host`:`port` (0: a free port), one line a command, LF-ended
    replies; started with `nursery.start`, it gives the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: int = listeners[0].socket.getsockname()[1]

    async def session(stream: trio.SocketStream) -> None:
        async with stream:
            buffer = b""
            while True:
                try:
                    data = await stream.receive_some(MAX_LINE)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    text = line.decode("ascii", "replace").rstrip("\r")
                    for reply in instrument.handle(text):
                        try:
                            await stream.send_all(reply.encode("ascii") + b"\n")
                        except trio.BrokenResourceError:
                            return
                if len(buffer) > MAX_LINE:
                    buffer = b""

    task_status.started(bound)
    await trio.serve_listeners(session, listeners)


async def serve_korad(
    instrument: KoradInstrument,
    *,
    idle: float = IDLE,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `instrument` on a new pty; started with `nursery.start`, it gives the port's path
    (e.g. /dev/pts/5) for `korad:PATH`."""
    pty = Pty()
    try:
        task_status.started(pty.path)
        while True:
            data: bytes | None = None
            if instrument.pending:
                with trio.move_on_after(idle):
                    data = await pty.stream.receive_some(MAX_LINE)
            else:
                data = await pty.stream.receive_some(MAX_LINE)
            if data == b"":
                return  # the port end hung up
            reply = instrument.idle() if data is None else instrument.feed(data)
            if reply:
                await pty.stream.send_all(reply)
    finally:
        with trio.CancelScope(shield=True):
            await pty.aclose()
