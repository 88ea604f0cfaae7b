"""`GET /metrics`: the run's state in Prometheus' text format (docs/metrics.md).

Nothing is counted per sample for it: a collector reads, at scrape time, what the run already
keeps (the observer's tallies, the link's counters, the store's, the viewer's statistics) and
turns it into metric families. In a run the run's own series carry the labels `scenario` and
`target`; each device's carry `scenario`, `target` (the device's), `device` (its name) and
`firmware` (what its hello named; empty before the hello), one series per device of a family.
Under `harness view` there is no run: the collector reports the log instead (its rows, its runs
by verdict and the newest run), read in a worker thread.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from harness.runner.observer import INJECTED_KINDS
from harness.scenario.expect.states import STATES
from harness.store import queries
from harness.store.db import info

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from prometheus_client.metrics_core import Metric

    from harness.viewer.archive import Archive
    from harness.viewer.live import DeviceLive, LiveState

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The exposition format's media type, as prometheus-client writes it."""
PREFIX = "powerhil_"
EXPECTATION_STATES = STATES
LOG_TABLES = ("runs", "samples", "events", "rollups_10s", "rollups_1m")
"""The row counts of `harness db info` that /metrics reports under `harness view`."""
JOULES_PER_WH = 3600.0
COULOMBS_PER_MAH = 3.6


class _Families:
    """Builds metric families whose series carry the same labels (a run's, a device's, or none).
    Builders that share `families` add their series to the same family of a name, so a metric
    is one family however many devices have a series of it."""

    def __init__(self, labels: dict[str, str], families: dict[str, Metric] | None = None) -> None:
        self.names = list(labels)
        self.values = list(labels.values())
        self.families: dict[str, Metric] = {} if families is None else families

    @property
    def out(self) -> list[Metric]:
        return list(self.families.values())

    def _family(
        self,
        kind: type[GaugeMetricFamily | CounterMetricFamily],
        name: str,
        doc: str,
        more: list[str],
    ) -> Metric:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = kind(PREFIX + name, doc, labels=[*self.names, *more])
        return family

    def gauge(self, name: str, doc: str, value: float | None, **more: str) -> None:
        """A gauge; left out while `value` is None (nothing measured yet) or not finite."""
        if value is None or not math.isfinite(value):
            return
        family = self._family(GaugeMetricFamily, name, doc, list(more))
        family.add_metric([*self.values, *more.values()], value)

    def counter(self, name: str, doc: str, value: float) -> None:
        family = self._family(CounterMetricFamily, name, doc, [])
        family.add_metric(self.values, value)

    def gauges_by(self, name: str, doc: str, label: str, values: dict[str, float]) -> None:
        family = self._family(GaugeMetricFamily, name, doc, [label])
        for key, value in values.items():
            family.add_metric([*self.values, key], value)

    def counters_by(self, name: str, doc: str, label: str, values: dict[str, float]) -> None:
        family = self._family(CounterMetricFamily, name, doc, [label])
        for key, value in values.items():
            family.add_metric([*self.values, key], value)


def run_labels(live: LiveState) -> dict[str, str]:
    """The labels of the run's own series: its scenario and its targets."""
    return {"scenario": live.ctx.scenario.name, "target": live.run_target()}


def device_labels(live: LiveState, d: DeviceLive) -> dict[str, str]:
    """The labels of a device's series: the run's scenario, the device's target, its name, and
    the firmware its hello named (empty before the hello)."""
    hello = d.run.observer.hello
    return {
        "scenario": live.ctx.scenario.name,
        "target": live.target(d),
        "device": d.name,
        "firmware": "" if hello is None else hello.fw,
    }


def missing_now(d: DeviceLive) -> int:
    """The current boot's samples the host knows are missing, as the run record counts them
    on a target without a truth to count against (the observer's `totals`): skipped for good,
    plus those of a gap still open. Not the mock's truth (produced minus delivered), which
    while the run goes counts every sample still on its way as lost."""
    obs = d.run.observer
    session = d.run.session
    tally = obs.boots.get(obs.current_boot) if obs.current_boot is not None else None
    skipped = 0 if tally is None else tally.skipped
    return skipped + (0 if session is None else session.link.missing_count)


async def run_families(live: LiveState) -> list[Metric]:
    """The run's metrics as they stand now (call it on the run's own thread: it reads the run's
    state as it is, between two of its steps): the run's own series, then each device's, a
    device at a time with a checkpoint after each (the links run between two devices)."""
    ctx = live.ctx
    m = _Families(run_labels(live))
    verdict = live.verdict() or ("ended" if live.ended else "running")
    m.gauges_by(
        "run_verdict",
        "The run's verdict (running while it goes on): 1 for the current one.",
        "verdict",
        {verdict: 1},
    )
    m.gauge(
        "run_info",
        "The run: its log id (empty without a database) and seed.",
        1,
        run_id="" if ctx.run_id is None else str(ctx.run_id),
        seed=str(ctx.seed),
    )
    m.gauge("run_start_time_seconds", "Unix time of the run's scenario second 0.", live.wall0)
    duration = ctx.scenario.duration
    m.gauge(
        "run_elapsed_seconds",
        "Scenario seconds so far.",
        min(live.now(), duration) if math.isfinite(duration) else live.now(),
    )
    m.gauge(
        "run_duration_seconds",
        "The scenario's length in seconds (absent for a run without end, e.g. monitor).",
        duration if math.isfinite(duration) else None,
    )
    for d in list(live.devices.values()):
        _device_families(live, d, _Families(device_labels(live, d), m.families))
        await trio.lowlevel.checkpoint()
    store = ctx.store
    if store is not None:
        m.counter("store_rows_written", "Rows the store committed.", store.rows_written)
        m.gauge("store_backlog_rows", "Rows taken but not yet committed.", store.pending_rows)
        m.counter(
            "store_rows_dropped",
            "Rows given up (the database failed past what the writer holds).",
            store.rows_dropped,
        )
    m.gauge("viewer_clients", "Pages following the run live.", len(live.hub.clients))
    return m.out


def _device_families(live: LiveState, d: DeviceLive, m: _Families) -> None:
    """One device's series: its expectations, last sample, energy, faults and link."""
    obs = d.run.observer
    states = Counter(ev.outcome.state for ev in obs.evaluators)
    m.gauges_by(
        "expectations",
        "The scenario's expectations by state.",
        "state",
        {state: states[state] for state in EXPECTATION_STATES},
    )
    last = obs.last_sample
    if last is not None:
        s = last.sample
        m.gauge("voltage_volts", "Bus voltage of the last sample.", s.v)
        m.gauge("current_amperes", "Current of the last sample.", s.a)
        m.gauge("power_watts", "Power of the last sample.", s.w)
        m.gauge("device_boot", "The device's boot number of the last sample.", s.boot)
        m.gauge(
            "last_sample_time_seconds",
            "Unix time of the last sample's end.",
            live.wall0 + last.end,
        )
    energy = d.stats.snapshot()["energy"]
    if energy["wh"] is not None:
        m.gauge(
            "energy_joules",
            "Energy the samples account for since the run started (1 Wh = 3600 J).",
            energy["wh"] * JOULES_PER_WH,
        )
    if energy["mah"] is not None:
        m.gauge(
            "charge_coulombs",
            "Charge the samples account for since the run started (1 mAh = 3.6 C).",
            energy["mah"] * COULOMBS_PER_MAH,
        )
    m.counters_by(
        "faults_injected",
        "Faults the injector put on the link, by kind.",
        "kind",
        {kind: obs.injected.get(kind, 0) for kind in INJECTED_KINDS},
    )

    session = d.run.session
    if session is None:
        return
    link = session.link
    st = link.stats
    totals = obs.totals(link)
    m.gauge(
        "link_up",
        "1 while the link is synced and samples arrive.",
        live.link(d)["state"] == "up",
    )
    m.counter("samples_delivered", "Samples the host delivered.", totals.delivered)
    m.gauge(
        "samples_lost",
        "Samples of the current boot the host knows are missing: given up, or in a gap "
        "not yet filled (falls as a gap fills).",
        missing_now(d),
    )
    m.gauge(
        "samples_lost_to_resets",
        "Samples of earlier boots never delivered.",
        totals.lost_to_resets,
    )
    m.counter("samples_duplicated", "Samples that arrived more than once.", totals.duplicated)
    m.counter(
        "retransmissions",
        "Samples that came again (gap fills, duplicates dropped) plus command resends.",
        st.resent,
    )
    m.counter("corrupt_frames", "Frames the host could not decode.", st.corrupt)
    m.counter("gaps", "Gaps in the sample sequence the host saw.", st.gaps)
    m.counter("device_resets", "Device resets the host saw.", totals.resets)
    m.counter("frames_received", "Frames the host received.", st.frames_in)
    m.counter("received_bytes", "Bytes the host received.", st.bytes_in)
    m.counter("commands_sent", "Commands the run sent.", totals.commands_sent)
    m.counters_by(
        "commands_answered",
        "Commands the device answered, by outcome (sent minus these are pending).",
        "outcome",
        {"done": totals.commands_done, "failed": totals.commands_failed},
    )


def log_facts(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """What /metrics tells of the log under `harness view` (blocking: a worker thread)."""
    facts = info(conn, path)
    facts["verdicts"] = queries.verdict_counts(conn)
    newest = queries.runs(conn, 1, 0)
    facts["newest_run"] = newest[0] if newest else None
    return facts


def log_families(facts: dict[str, Any]) -> list[Metric]:
    m = _Families({})
    m.gauges_by(
        "log_rows",
        "Rows in the log, by table.",
        "table",
        {table: facts[table] for table in LOG_TABLES},
    )
    m.gauge("log_bytes", "The log's size on disk (with its write-ahead log).", facts["bytes"])
    m.gauge(
        "log_oldest_sample_time_seconds",
        "Unix time of the oldest sample kept.",
        facts["oldest_sample"],
    )
    m.gauge(
        "log_newest_sample_time_seconds", "Unix time of the newest sample.", facts["newest_sample"]
    )
    m.gauges_by(
        "log_runs",
        "Runs in the log by verdict (running: no verdict yet).",
        "verdict",
        facts["verdicts"],
    )
    run = facts["newest_run"]
    if run is not None:
        labels = {
            "scenario": run["scenario"] or "",
            "target": run["target"] or "",
            "firmware": run["firmware"] or "",
        }
        newest = _Families(labels, m.families)
        newest.gauge(
            "log_newest_run_info",
            "The newest run in the log: its id and verdict.",
            1,
            run_id=str(run["id"]),
            verdict=run["verdict"] or "running",
        )
        newest.gauge("log_newest_run_start_time_seconds", "Unix time it started.", run["started"])
        newest.gauge("log_newest_run_end_time_seconds", "Unix time it ended.", run["ended"])
    return m.out


class _Fixed(Collector):
    """Families already built, for one exposition."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


class Exporter:
    """What GET /metrics answers. In a run: the run's collector, collected on the run's own
    thread (so nothing reads the run's state while it changes). Under `harness view`: the log's
    facts, read in a worker thread as every query of the log is."""

    def __init__(self, live: LiveState | None, archive: Archive | None) -> None:
        self.archive = archive
        self.live = live

    async def render(self) -> bytes:
        if self.live is not None:
            return generate_latest(_registry(_Fixed(await run_families(self.live))))
        if self.archive is None:
            return generate_latest(_registry(_Fixed([])))
        archive = self.archive
        facts = await archive.call(log_facts, archive.path)
        return generate_latest(_registry(_Fixed(log_families(facts))))
