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

from harness.report.data import EVENTS_SHOWN, Chart, listed, report_data
from harness.report.envelope import Envelope, Trace
from harness.report.render import UPlot, render, write_report
from harness.runner.bus import Published, SampleEvent
from harness.runner.context import DRAIN_MAX, Extension, RunContext
from harness.scenario.model import DEFAULT_DEVICE

SOURCE = "harness run"


class Collector:
    """A bus subscriber: constant work per item, bounded memory whatever the run's length (a
    chart of bounded buckets for each device the run has)."""

    def __init__(self, duration: float) -> None:
        self.span = duration + DRAIN_MAX if math.isfinite(duration) else math.inf
        self.charts: dict[str, tuple[Envelope, Trace]] = {}
        """Each device's envelope and supply readback, by the name its items carry."""
        self.events: list[dict[str, Any]] = []
        self.events_total = 0

    def _of(self, device: str) -> tuple[Envelope, Trace]:
        chart = self.charts.get(device)
        if chart is None:
            chart = self.charts[device] = (Envelope(self.span), Trace(self.span))
        return chart

    def take(self, item: Published) -> None:
        if isinstance(item, SampleEvent):
            s = item.sample
            envelope = self._of(item.device)[0]
            envelope.add(item.end, s.n, (s.vmin, s.v, s.vmax), (s.a, s.a, s.amax), (s.w,) * 3)
        elif item.kind == "readback":
            self._of(item.device)[1].add(item.at, item.data["volts"], item.data["amps"])
        elif listed(item.kind, item.data):
            self.events_total += 1
            if len(self.events) < EVENTS_SHOWN:
                self.events.append(
                    {"at": item.at, "device": item.device, "kind": item.kind, "data": item.data}
                )

    def _columns(self, device: str) -> Chart:
        envelope, readback = self._of(device)
        return envelope.columns(), readback.columns()

    def data(self, record: dict[str, Any]) -> dict[str, Any]:
        names = [d["name"] for d in record.get("devices") or []]
        if len(names) > 1:
            charts = {name: self._columns(name) for name in names}
            chart, readback = charts[names[0]]
        else:  # one device: whatever its name, every sample is its own
            device = names[0] if names else next(iter(self.charts), DEFAULT_DEVICE)
            charts = None
            chart, readback = self._columns(device)
        return report_data(record, chart, readback, self.events, self.events_total, SOURCE, charts)


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
