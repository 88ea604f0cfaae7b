"""The store as a run extension: opens the database before the run (a database the user cannot
use stops the run before it starts, exit 2), writes everything the bus publishes, and records
the run with its verdict when it ends."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from harness.runner.bus import RunEvent
from harness.runner.context import Extension, RunContext
from harness.store.db import add_device, create_run, finish_run, open_for_writing
from harness.store.writer import Retention, StoreWriter


def recorder(path: Path, retention: Retention = Retention()) -> Extension:
    """An extension for run_scenario that logs the run to the database at `path`, each row as
    its device's."""

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        conn = open_for_writing(path)
        wall0 = ctx.wall0
        kind = "monitor" if ctx.scenario.duration == math.inf else "run"
        named = [(d, _target_name(ctx, d.name)) for d in ctx.scenario.devices]
        kinds = ", ".join(dict.fromkeys(t for _, t in named))
        (first, target), *others = named
        port = ctx.options.serial_for(first) if target == "board" else None
        run_id = create_run(
            conn, kind, ctx.scenario.name, kinds, ctx.seed, wall0, first.name, port, target
        )
        for d, target in others:
            port = ctx.options.serial_for(d) if target == "board" else None
            add_device(conn, run_id, d.name, target, port)

        def report(message: str) -> None:
            print(message, file=sys.stderr, flush=True)
            ctx.bus.publish(
                RunEvent(
                    "store",
                    trio.current_time() - ctx.origin,
                    {"message": message},
                    ctx.scenario.devices[0].name,
                )
            )

        writer = StoreWriter(conn, run_id, wall0, ctx.origin, retention, report)
        ctx.store = writer
        unsubscribe = ctx.bus.subscribe(writer.take)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer.run)
                try:
                    yield
                finally:
                    unsubscribe()
                    writer.close()
        finally:
            record = ctx.record  # None: the run stopped on an error before its end
            ended = wall0 + (trio.current_time() - ctx.origin)
            verdict = "error" if record is None else record.verdict
            stored = {} if record is None else record.as_dict()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(
                    finish_run, conn, run_id, ended, verdict, stored, first.name
                )
            conn.close()

    return extension


def _target_name(ctx: RunContext, device: str) -> str:
    run = ctx.devices.get(device)
    if run is not None and run.target is not None:
        return run.target.name
    return ctx.options.target
