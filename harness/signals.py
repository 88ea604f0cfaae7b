"""Ctrl-C and SIGTERM as a trio Event: what ends a run early, `harness view` and `harness
mock`, each then shutting down cleanly in its own nursery."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import trio


async def stop_on_signal(
    stop: trio.Event,
    *,
    on_signal: Callable[[int], None] = lambda signum: None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Set `stop` at the first SIGINT or SIGTERM (telling `on_signal` which); started
    (`nursery.start`) once the signals are caught. Only the main thread can receive signals, so elsewhere (a test's worker thread) this
    returns at once and only `stop` ends the wait."""
    if threading.current_thread() is not threading.main_thread():
        task_status.started()
        return
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            on_signal(signum)
            stop.set()
            return
