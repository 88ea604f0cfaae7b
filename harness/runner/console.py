"""What a run prints: a live status line on a terminal, and the verdict table at the end."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

import trio

from harness.runner.observer import Observer
from harness.runner.record import RunRecord
from harness.runner.session import HostSession
from harness.scenario.expect import FAIL, PASS, SKIPPED

MARK = {PASS: "PASS", FAIL: "FAIL", SKIPPED: "SKIP", "pending": "----"}


def status_line(obs: Observer, session: HostSession, t: float, duration: float) -> str:
    parts = [f"{t:6.1f}/{duration:g}s" if math.isfinite(duration) else f"{t:6.1f}s"]
    last = obs.last_sample
    if last is not None:
        s = last.sample
        parts.append(f"{s.v:6.3f} V {s.a:7.4f} A {s.w:6.3f} W {s.status:>3}")
    else:
        parts.append("waiting for the device")
    st = session.link.stats
    parts.append(
        f"samples {st.samples} gaps {st.gaps} resent {st.retransmissions} corrupt {st.corrupt}"
    )
    parts.append(f"faults {sum(obs.injected.values())}")
    states = [ev.outcome.state for ev in obs.evaluators]
    parts.append(
        f"expect {states.count(PASS)} pass {states.count(FAIL)} fail {states.count('pending')} pending"
    )
    return " | ".join(parts)


async def show_status(
    obs: Observer, session: HostSession, origin: float, duration: float, out: TextIO = sys.stdout
) -> None:
    """Redraw the status line on a terminal, at most 5 times a second of wall time."""
    last_draw = 0.0
    try:
        while True:
            await trio.sleep(0.1)
            if time.monotonic() - last_draw >= 0.2:
                last_draw = time.monotonic()
                line = status_line(obs, session, trio.current_time() - origin, duration)
                out.write("\r\x1b[K" + line[:200])
                out.flush()
    finally:
        out.write("\r\x1b[K")
        out.flush()


def verdict_table(record: RunRecord) -> str:
    sc = record.scenario
    length = "no end" if sc.duration is None else f"{sc.duration:g} s scenario"
    lines = [
        f"{sc.name}: {record.verdict.upper()}   ({length}, seed {record.seed}, "
        f"{record.target}, {record.wall_seconds:.1f} s wall)"
    ]
    width = max([len(e.label) for e in record.expectations] + [20])
    for e in record.expectations:
        measured = e.detail if e.detail else ("" if e.measured is None else str(e.measured))
        lines.append(f"  {MARK[e.state]}  {e.label:<{width}}  {measured}")
    if not record.expectations:
        lines.append("  (no expectations)")
    link = record.link
    lines.append(
        f"  link      delivered {link.delivered}  lost {link.lost}  duplicated {link.duplicated}  "
        f"retransmissions {link.retransmissions}  corrupt {link.corrupt}  gaps {link.gaps}  "
        f"commands {link.commands_done}/{link.commands_sent} ({link.commands_failed} failed)  "
        f"resets {link.resets}"
    )
    shown = "  ".join(f"{k} {v}" for k, v in record.injected.items() if v) or "none"
    lines.append(f"  injected  {shown}")
    if record.error:
        lines.append(f"  error     {record.error}")
    return "\n".join(lines)
