"""What a run needs of the viewer before, or instead of, its web stack: the `--bind` address,
read when the command line is, and the stand-in extension of a run in virtual time (`--fast`),
which the viewer does not serve. Nothing here imports Quart or Hypercorn, so a `--fast` run
never loads them (`harness.viewer.server` is the viewer itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from harness.errors import UserError
from harness.runner.context import Extension, RunContext

NOT_SERVED = (
    "viewer: not served in virtual time (--fast); browse the run afterwards with `harness view`"
)


def parse_bind(bind: str) -> tuple[str, int]:
    """HOST:PORT ("127.0.0.1:8000", "[::1]:8000", "0.0.0.0:0" for any free port)."""
    text = bind.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or (":" in host and not text.startswith("[")):
        raise UserError(
            f"--bind {bind}: expected HOST:PORT, e.g. 127.0.0.1:8000 (0.0.0.0:8000 for every interface)"
        )
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise UserError(f"--bind {bind}: the port must be a number 0..65535")
    return host, number


def not_served(bind: str) -> Extension:
    """The viewer extension of a run in virtual time: it says the viewer is not served, as
    `server.viewer` does for such a run, and `bind` is checked as that would check it."""
    parse_bind(bind)

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        print(NOT_SERVED, file=ctx.options.out, flush=True)
        yield

    return extension
