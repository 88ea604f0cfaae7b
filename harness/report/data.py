"""What the report shows, made from a run record in its JSON form (`RunRecord.as_dict()`, which
is also what the log keeps in `runs.record`), the run's chart columns (`envelope`'s, or the
log's history), the supply's readback trace and the run's events. The expectation cells are the
verdict table's (`harness.runner.console`): the console, the report and the JUnit XML say the
same thing of each expectation."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from harness.runner.bus import KINDS
from harness.runner.console import MARK, limit_text, measured_text
from harness.runner.record import ExpectationResult
from harness.scenario.expect import STATES
from harness.scenario.quantities import (
    CHARGE,
    CURRENT,
    ENERGY,
    POWER,
    TIME,
    VOLTAGE,
    Dimension,
    format_value,
)

EVENTS_SHOWN = 1000
"""Events the report lists (the first of them; it says how many there were)."""
PER_FRAME_KINDS = ("fault", "corrupt", "gap", "retransmission", "duplicate")
"""The relay's and the link's events of single frames (an injected fault, a corrupt frame, a
gap, a retransmission, a duplicate): a lossy run has thousands, counted in the faults and link
tables instead — except a port's unplugging and replugging, which the relay reports as a fault
of `what = "port"` (`listed`)."""
UNLISTED_KINDS = (*PER_FRAME_KINDS, "readback")
"""The kinds the report does not list: the per-frame ones and the supply's readbacks (drawn in
the chart)."""
EVENT_KINDS = tuple(kind for kind in KINDS if kind not in UNLISTED_KINDS)
"""The events the report lists: every run-level kind of the bus (`harness.runner.bus.KINDS`)."""
_DIMENSIONS = {d.base: d for d in (VOLTAGE, CURRENT, POWER, ENERGY, CHARGE, TIME)}
INJECTED_OBSERVED = (
    ("corrupt", "frames the host found corrupt"),
    ("gaps", "gaps in the sequence"),
    ("nacks_sent", "NACKs sent"),
    ("retransmissions", "retransmissions received"),
    ("duplicates_dropped", "duplicates dropped"),
    ("lost", "samples lost"),
    ("duplicated", "samples delivered twice"),
    ("commands_executed_twice", "commands executed twice"),
)
"""What the host observed of the injected faults, from the record's link totals."""


def listed(kind: str, data: dict[str, Any]) -> bool:
    """Whether the report lists an event of `kind`."""
    return kind in EVENT_KINDS or (kind == "fault" and data.get("what") == "port")


@dataclass(frozen=True, slots=True)
class ExpectationRow:
    state: str
    mark: str
    label: str
    measured: str
    limit: str
    margin: str


def _expectation(d: dict[str, Any]) -> ExpectationRow:
    names = {f.name for f in fields(ExpectationResult)}
    e = ExpectationResult(**{k: v for k, v in d.items() if k in names})
    return ExpectationRow(
        e.state, MARK.get(e.state, e.state), e.label, measured_text(e), limit_text(e), _margin(e)
    )


def _margin(e: ExpectationResult) -> str:
    if e.margin is None:
        return ""
    dim: Dimension | None = _DIMENSIONS.get(e.unit)
    return format_value(e.margin, dim) if dim is not None else f"{e.margin:g}"


def finite(value: Any) -> Any:
    """`value` with every non-finite number as None: the report's JSON is JSON (no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


CHART_DECIMALS = 6
"""Decimals the chart's values keep: micro-volts, -amps and -watts, finer than the INA219
resolves (its bus voltage step is 4 mV), where a mean's full float prints 17 digits."""


def _columns(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        name: [
            None if x is None or not math.isfinite(x) else round(x, CHART_DECIMALS) for x in values
        ]
        for name, values in columns.items()
    }


def _details(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if value is None or value == "":
            continue
        if isinstance(value, float):
            shown = f"{value:.6g}"
        elif isinstance(value, str):
            shown = value
        else:
            shown = json.dumps(finite(value), default=str)
        parts.append(f"{key} {shown}")
    return ", ".join(parts)


def _seconds(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


NO_RECORD = "unknown — the run has no record ({why})"
"""What the report of a run without a record says in place of everything only a record knows
(its expectations, link and fault totals, commands, device, log, length and wall time)."""
WHY_NO_RECORD = {"running": "running", "killed": "killed", "error": "it ended on an error"}
"""By the verdict the log gives a run without a record: why it has none."""


def _common(
    verdict: str,
    events: list[dict[str, Any]],
    events_total: int,
    source: str,
) -> dict[str, Any]:
    """The context both reports share: the verdict and the events (each with its device's
    name, "" where the run has one device or the log does not say)."""
    return {
        "verdict": verdict,
        "source": source,
        "events": [
            {
                "at": _seconds(e["at"]),
                "device": e.get("device", ""),
                "kind": e["kind"],
                "details": _details(e["data"]),
            }
            for e in events[:EVENTS_SHOWN]
        ],
        "events_total": events_total,
    }


Chart = tuple[dict[str, list[Any]], dict[str, list[Any]] | None]
"""A chart's columns (`envelope`'s, or the log's history) and its supply's readback (None or
no `t`: none)."""


def _chart(chart: Chart, duration: float | None, device: str | None = None) -> dict[str, Any]:
    """What a chart's JSON block holds (and, in a run of several devices, whose it is)."""
    envelope, readback = chart
    out: dict[str, Any] = {
        "envelope": _columns(envelope),
        "readback": _columns(readback) if readback and readback.get("t") else None,
        "duration": duration,
    }
    if device is not None:
        out["device"] = device
    return out


def _section(part: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of one device from its part of a record: the record itself for a
    run of one device, a `devices` entry for one of several (the same keys)."""
    expectations = [_expectation(e) for e in part.get("expectations", [])]
    checks = [_expectation(e) for e in part.get("checks", [])]
    states = Counter(e.state for e in (*expectations, *checks))
    link: dict[str, int] = part.get("link", {})
    by_direction: dict[str, dict[str, int]] = part.get("injected_by_direction", {})
    injected = [
        (
            kind,
            by_direction.get("to_host", {}).get(kind, 0),
            by_direction.get("to_device", {}).get(kind, 0),
            total,
        )
        for kind, total in part.get("injected", {}).items()
    ]
    device = {
        "hello": None,
        "boots": [],
        "resets": [],
        "silences": [],
        "other_devices": [],
        **part.get("device", {}),
    }
    return {
        "expectations": expectations,
        "checks": checks,
        "counted": [(s, states[s]) for s in STATES if states[s]],
        "link": [(key.replace("_", " "), value) for key, value in link.items()],
        "injected": injected,
        "observed": [(label, link.get(key, 0)) for key, label in INJECTED_OBSERVED],
        "commands": [
            {
                "issued": _seconds(c.get("issued")),
                "step": "re-applied" if c.get("reapplied") else c.get("step"),
                "command": " ".join(
                    [c["name"], *(f"{k}={v}" for k, v in (c.get("args") or {}).items())]
                ),
                "outcome": c.get("outcome", ""),
                "latency": "" if c.get("latency") is None else f"{c['latency'] * 1000:.0f} ms",
                "reason": c.get("reason") or "",
            }
            for c in part.get("commands", [])
        ],
        "device": device,
        "log": device.get("log", []),
        "log_total": device.get("log_lines", len(device.get("log", []))),
        "supply": part.get("supply"),
    }


def report_data(
    record: dict[str, Any],
    chart: dict[str, list[Any]],
    readback: dict[str, list[Any]] | None,
    events: list[dict[str, Any]],
    events_total: int,
    source: str,
    charts: Mapping[str, Chart] | None = None,
) -> dict[str, Any]:
    """The template's context. `events` are {at (scenario seconds), kind, data, and in a run
    of several devices the device's name}, the first EVENTS_SHOWN of those `listed`,
    `events_total` how many were; `source` says where the report was made from ("harness
    run", or the log and the run's id). `chart` and `readback` are the run's; in a run of
    several devices, `charts` gives each device's by name, drawn in its section on one time
    axis (without them, `chart` is every device's samples together, drawn once)."""
    sc = record["scenario"]
    duration = sc.get("duration")
    parts: list[dict[str, Any]] = record.get("devices") or []
    several = len(parts) > 1
    sections: list[dict[str, Any]] = []
    if several:
        for part in parts:
            own = (charts or {}).get(part["name"])
            sections.append(
                {
                    **_section(part),
                    "key": f"-{part['name']}",
                    "name": part["name"],
                    "target": part.get("target", ""),
                    "port": part.get("port"),
                    "verdict": part["verdict"],
                    "error": part.get("error"),
                    "chart": None if own is None else _chart(own, duration, part["name"]),
                }
            )
    else:
        sections.append({**_section(record), "key": "", "chart": None})
    together = several and any(s["chart"] is None for s in sections)
    if together:  # one chart of every device's samples, none in the sections
        for s in sections:
            s["chart"] = None
    elif not several:
        sections[0]["chart"] = _chart((chart, readback), duration)
    return {
        **_common(record["verdict"], events, events_total, source),
        "recorded": True,
        "several": several,
        "chart": _chart((chart, readback), duration) if together else None,
        "scenario": sc,
        "duration": "no end" if duration is None else f"{duration:g} s",
        "target": record.get("target", ""),
        "seed": record.get("seed"),
        "started": record.get("started", ""),
        "wall_seconds": record.get("wall_seconds"),
        "virtual_time": record.get("virtual_time", False),
        "strict": record.get("strict", False),
        "error": record.get("error"),
        "sections": sections,
        "counted": sections[0]["counted"] if not several else _counted(record),
    }


def _counted(record: dict[str, Any]) -> list[tuple[str, int]]:
    """Every device's expectations and checks, counted by state."""
    states = Counter(
        e["state"] for e in (*record.get("expectations", []), *record.get("checks", []))
    )
    return [(s, states[s]) for s in STATES if states[s]]


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """What the log knows of a run without a record: its row and what it stored."""

    name: str
    target: str
    seed: int | None
    started: str
    verdict: str
    """`running`, `killed` or `error`."""
    samples: int
    """Samples stored."""
    first: float | None
    last: float | None
    """Scenario seconds of the first and last sample stored."""


def unrecorded_data(
    run: Unrecorded,
    chart: dict[str, list[Any]],
    readback: dict[str, list[Any]] | None,
    events: list[dict[str, Any]],
    events_total: int,
    source: str,
) -> dict[str, Any]:
    """The template's context for a run without a record (as `report_data`'s): what the log
    holds of it, and NO_RECORD for the rest."""
    why = WHY_NO_RECORD.get(run.verdict, run.verdict)
    return {
        **_common(run.verdict, events, events_total, source),
        "recorded": False,
        "several": False,
        "chart": _chart((chart, readback), None),
        "no_record": NO_RECORD.format(why=why),
        "scenario": {"name": run.name},
        "target": run.target,
        "seed": run.seed,
        "started": run.started,
        "stored": [
            ("samples stored", str(run.samples)),
            ("first sample (s)", _seconds(run.first)),
            ("last sample (s)", _seconds(run.last)),
        ],
    }
