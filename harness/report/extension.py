"""`harness run --html PATH`: an extension that folds what the run publishes into the report's
bounded chart (`envelope`), keeps the first events the report lists, and writes the report when
the run has its record — whatever the verdict, also for a run stopped by Ctrl-C; a run that
ends on an error has no record, and no report. A report that cannot be written then is a line
after the verdict table (`RunContext.write_at_end`), as a `--json` or `--junit` one is."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from harness.report.data import EVENTS_SHOWN, listed, report_data
from harness.report.envelope import Envelope, Trace
from harness.report.render import UPlot, render, write_report
from harness.runner.bus import Published, SampleEvent
from harness.runner.context import DRAIN_MAX, Extension, RunContext

SOURCE = "harness run"


class Collector:
    """A bus subscriber: constant work per item, bounded memory whatever the run's length."""

    def __init__(self, duration: float) -> None:
        span = duration + DRAIN_MAX if math.isfinite(duration) else math.inf
        self.envelope = Envelope(span)
        self.readback = Trace(span)
        self.events: list[dict[str, Any]] = []
        self.events_total = 0

    def take(self, item: Published) -> None:
        if isinstance(item, SampleEvent):
            s = item.sample
            self.envelope.add(item.end, s.n, (s.vmin, s.v, s.vmax), (s.a, s.a, s.amax), (s.w,) * 3)
        elif item.kind == "readback":
            self.readback.add(item.at, item.data["volts"], item.data["amps"])
        elif listed(item.kind, item.data):
            self.events_total += 1
            if len(self.events) < EVENTS_SHOWN:
                self.events.append({"at": item.at, "kind": item.kind, "data": item.data})

    def data(self, record: dict[str, Any]) -> dict[str, Any]:
        return report_data(
            record,
            self.envelope.columns(),
            self.readback.columns(),
            self.events,
            self.events_total,
            SOURCE,
        )


def html_report(path: Path, uplot: UPlot) -> Extension:
    """The extension writing the run's report to `path` when the run ends."""

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        collector = Collector(ctx.scenario.duration)
        unsubscribe = ctx.bus.subscribe(collector.take)
        try:
            yield
        finally:
            unsubscribe()
        if ctx.record is not None:
            text = render(collector.data(ctx.record.as_dict()), uplot)
            ctx.write_at_end(partial(write_report, path, text))

    return extension
