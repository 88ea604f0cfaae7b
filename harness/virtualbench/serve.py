"""`harness virtual-bench`: the firmware in simavr as a stand-alone board and an emulated
supply feeding its rail, until Ctrl-C or SIGTERM.

    $ harness virtual-bench
    board /dev/pts/7
    supply scpi:TCPIP::127.0.0.1::40215::SOCKET
    $ harness run scenarios/brownout.toml --target board --serial /dev/pts/7 \\
          --supply scpi:TCPIP::127.0.0.1::40215::SOCKET

The lines on stdout say where each part is (one per line, flushed); everything else goes to
stderr. The board starts with its rail off (`--supply-off`) and resets whenever its pty is
opened (`--reset-on-open`), as an Uno does on DTR.
"""

from __future__ import annotations

import sys
from typing import TextIO

import trio

from harness.errors import TargetError, UserError, found_in
from harness.signals import stop_on_signal
from harness.supplies.emulated import EmulatedOutput, KoradInstrument, ScpiInstrument
from harness.supplies.emulators import serve_korad, serve_scpi
from harness.targets.simrunner import SimRunner
from harness.virtualbench import LOAD_OHMS
from harness.virtualbench.rail import RailFeed


async def virtual_bench(
    *,
    load_ohms: float = LOAD_OHMS,
    korad: bool = False,
    shared: bool = False,
    out: TextIO = sys.stdout,
    stop: trio.Event | None = None,
) -> None:
    """Serve the bench until `stop` is set (default: at Ctrl-C or SIGTERM), then stop the
    simulator and the servers. A simulator that dies by itself is a TargetError."""
    if stop is None:
        stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(stop_on_signal, stop)
        runner = SimRunner(["--reset-on-open", "--supply-off", *(["--shared"] if shared else [])])
        board = await runner.start(nursery)
        output = EmulatedOutput(load=load_ohms)
        feed = RailFeed(output, runner)
        output.on_output = feed.changed
        nursery.start_soon(feed.run)
        port = await nursery.start(serve_scpi, ScpiInstrument(output))
        lines = [f"board {board}", f"supply scpi:TCPIP::127.0.0.1::{port}::SOCKET"]
        if korad:
            lines.append(
                f"supply korad:{await nursery.start(serve_korad, KoradInstrument(output))}"
            )
        print("\n".join(lines), file=out, flush=True)
        print(
            f"virtual bench: the firmware in simavr on {board}, an emulated supply into a "
            f"{load_ohms:g} ohm load; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )

        async def stop_if_the_sim_dies() -> None:
            await runner.exited.wait()
            stop.set()

        nursery.start_soon(stop_if_the_sim_dies)
        await stop.wait()
        nursery.cancel_scope.cancel()
    if runner.failure is not None:
        raise TargetError(runner.failure)


def serve_virtual_bench(load_ohms: float, korad: bool, shared: bool) -> int:
    try:
        trio.run(lambda: virtual_bench(load_ohms=load_ohms, korad=korad, shared=shared))
    except BaseExceptionGroup as group:
        if (error := found_in(group, UserError)) is not None:
            raise error from None  # one line, exit 2 (harness.cli)
        raise
    print("virtual bench stopped", file=sys.stderr)
    return 0
