"""What a run prints: a line for each thing that happened to the device or its port, a live
status line on a terminal below them, and the verdict table at the end."""

from __future__ import annotations

import math
import os
import time
from typing import Any, TextIO

import trio

from harness.runner.bus import Published, RunEvent
from harness.runner.context import DeviceRun
from harness.runner.observer import Observer
from harness.runner.record import ExpectationResult, RunRecord
from harness.runner.session import HostSession
from harness.scenario.expect import FAIL, MARGINAL, PASS, PENDING, SKIPPED, STATES

MARK = {PASS: "PASS", MARGINAL: "MARG", FAIL: "FAIL", SKIPPED: "SKIP", PENDING: "----"}
STATUS_WIDTH = 200
ERASE = "\r\x1b[K"
"""Back to the start of the line and erase it: where the status line is redrawn."""


class Console:
    """The run's output. While a status line is drawn (no newline after it), a line is printed
    by erasing the status line, writing the line with its newline, and drawing the status line
    again below it, so the two never share a line."""

    def __init__(self, out: TextIO, several: bool = False) -> None:
        self.out = out
        self.several = several
        """The run has several devices: each line about one names it."""
        self._status: str | None = None
        """The status line as last drawn, while one is on the screen."""

    def named(self, device: str) -> str:
        """ "left: " before a line about one of several devices ("" in a run of one)."""
        return f"{device}: " if self.several else ""

    def say(self, line: str) -> None:
        if self._status is None:
            self.out.write(line + "\n")
        else:
            self.out.write(ERASE + line + "\n" + self._status)
        self.out.flush()

    def width(self) -> int:
        """Columns the status line may take: one less than the terminal's, so it never wraps
        (a wrapped line is left behind by the next redraw)."""
        try:
            return max(20, os.get_terminal_size(self.out.fileno()).columns - 1)
        except (AttributeError, OSError, ValueError):
            return STATUS_WIDTH

    def draw(self, status: str) -> None:
        self._status = status[: self.width()]
        self.out.write(ERASE + self._status)
        self.out.flush()

    def clear(self) -> None:
        """Erase the status line (the run's end): what is printed next starts a clean line."""
        self.out.write(ERASE)
        self.out.flush()
        self._status = None

    def take(self, item: Published) -> None:
        """A bus subscriber: the events a person at the console needs to hear of at once."""
        if isinstance(item, RunEvent) and (line := event_line(item)) is not None:
            if self.several and item.kind != "run":  # after its time, as "   1.0 s  "
                at, gap, rest = line.partition(TIME_END)
                line = at + gap + self.named(item.device) + rest
                if item.kind == "device":
                    line += "; the other devices go on"
            self.say(line)


TIME_END = " s  "
"""What ends the time an event's line starts with (`event_line`)."""


def event_line(e: RunEvent) -> str | None:
    """The console's line for an event, or None for those only the log and the viewer show."""
    d = e.data
    at = f"{e.at:8.1f} s  "
    if e.kind == "device":
        return f"{at}its link ended: {d['why']}"
    match e.kind:
        case "fault" if d.get("what") == "port":
            if d["fault"] == "unplugged":
                return f"{at}port {d['port']} unplugged"
            down = d.get("down")
            what = (
                f"{d['was']} replugged as {d['port']}" if "was" in d else f"{d['port']} replugged"
            )
            return f"{at}port {what}" + (f" ({down:.1f} s without it)" if down is not None else "")
        case "silent":
            last = d["last_sample"]
            since = "no sample yet" if last is None else f"no sample since {last:.1f} s"
            return f"{at}device went silent: {since} ({d['allowance']:.1f} s allowed)"
        case "reporting":
            last = d["last_sample"]
            gap = "" if last is None else f", {e.at - last:.1f} s after its last sample"
            return f"{at}device reporting again{gap}"
        case "sensor" if d["state"] == "over_max":
            return f"{at}rail {d['volts']:g} V: above the INA219's absolute maximum"
        case "sensor":
            return f"{at}rail {d['volts']:g} V: back within the INA219's absolute maximum"
        case "other_device":
            return f"{at}a different device on the port: {d['detail']}"
        case "supply" if d.get("what") == "opened":
            hand = " (applied by hand)" if d["by_hand"] else ""
            return (
                f"{at}supply {d['name']}: {d['identity']}{hand}\n{' ' * len(at)}{d['limits_text']}"
            )
        case "supply" if not d.get("by_hand") and (d["what"] == "output" or d["point"]):
            return f"{at}supply {_setting_text(d)} (took {d['latency'] * 1000:.0f} ms)"
        case "announcement":
            return f"{at}{d['text']}"
    return None


def _setting_text(d: dict[str, Any]) -> str:
    """A setting as the console and the viewer word it: "output on", "3 V (supply[3])"."""
    value = d["value"]
    if d["what"] == "output":
        return f"output {'on' if value else 'off'}"
    if d["what"] == "current_limit":
        return f"current limit {value:g} A"
    point = f" (supply[{d['point']}])" if d.get("point") else ""
    return f"{value:g} V{point}"


def status_line(obs: Observer, session: HostSession, t: float, duration: float) -> str:
    parts = [f"{t:6.1f}/{duration:g}s" if math.isfinite(duration) else f"{t:6.1f}s"]
    last = obs.last_sample
    if last is not None:
        s = last.sample
        parts.append(f"{s.v:6.3f} V {s.a:7.4f} A {s.w:6.3f} W {s.status:>3}")
    else:
        parts.append("waiting for the device")
    if (rb := obs.supply.last_readback) is not None:
        parts.append(f"supply {rb.volts:6.3f} V {rb.amps:7.4f} A")
    st = session.link.stats
    parts.append(f"samples {st.samples} gaps {st.gaps} resent {st.resent} corrupt {st.corrupt}")
    parts.append(f"faults {sum(obs.injected.values())}")
    states = [ev.outcome.state for ev in obs.evaluators]
    parts.append(
        f"expect {states.count(PASS)} pass {states.count(MARGINAL)} marginal "
        f"{states.count(FAIL)} fail {states.count(PENDING)} pending"
    )
    return " | ".join(parts)


async def show_status(
    console: Console, first: DeviceRun, origin: float, duration: float, devices: int = 1
) -> None:
    """Redraw the status line on a terminal, at most 5 times a second of wall time: the first
    device's (named, in a run of several)."""
    last_draw = 0.0
    try:
        while True:
            await trio.sleep(0.1)
            if first.session is not None and time.monotonic() - last_draw >= 0.2:
                last_draw = time.monotonic()
                t = trio.current_time() - origin
                line = status_line(first.observer, first.session, t, duration)
                if devices > 1:
                    line = f"{first.name} (1 of {devices}) {line}"
                console.draw(line)
    finally:
        console.clear()


def measured_text(e: ExpectationResult) -> str:
    """What an expectation measured, as the verdict table and the HTML report print it."""
    return e.detail if e.detail else ("" if e.measured is None else str(e.measured))


def limit_text(e: ExpectationResult) -> str:
    """Its limits where its label does not already say them ("" then, or without limits)."""
    return e.limit if e.limit and e.limit not in e.label else ""


def verdict_table(record: RunRecord) -> str:
    sc = record.scenario
    length = "no end" if sc.duration is None else f"{sc.duration:g} s scenario"
    lines = [
        f"{sc.name}: {record.verdict.upper()}   ({length}, seed {record.seed}, "
        f"{record.target}, {record.wall_seconds:.1f} s wall)"
    ]
    judged = expectation_lines(record)
    lines.extend(judged[: len(record.expectations)])
    if not record.expectations:
        lines.append("  (no expectations)")
    lines.extend(judged[len(record.expectations) :])
    states = [e.state for e in (*record.expectations, *record.checks)]
    counted = "  ".join(f"{states.count(s)} {s}" for s in STATES if states.count(s))
    lines.append(
        f"  counted   {counted}" + ("  (--strict: marginal fails)" if record.strict else "")
    )
    link = record.link
    lines.append(
        f"  link      delivered {link.delivered}  lost {link.lost}  duplicated {link.duplicated}  "
        f"retransmissions {link.retransmissions}  corrupt {link.corrupt}  gaps {link.gaps}  "
        f"commands {link.commands_done}/{link.commands_sent} ({link.commands_failed} failed)  "
        f"resets {link.resets}"
    )
    shown = "  ".join(f"{k} {v}" for k, v in record.injected.items() if v) or "none"
    lines.append(f"  injected  {shown}")
    if len(record.devices) > 1:
        for d in record.devices:
            t = d.link
            lines.append(
                f"  {d.name:<9} {d.verdict.upper():<8} {d.target}  delivered {t.delivered}  "
                f"lost {t.lost}  duplicated {t.duplicated}  "
                f"commands {t.commands_done}/{t.commands_sent}"
            )
    if record.error:
        lines.append(f"  error     {record.error}")
    return "\n".join(lines)


def expectation_lines(record: RunRecord) -> list[str]:
    """The table's line for each expectation, then for each check every run makes, in the
    record's order (a failed pytest item shows its failed ones)."""
    width = max([len(e.label) for e in (*record.expectations, *record.checks)] + [20])
    lines = []
    for e in record.expectations:
        measured, limit = measured_text(e), limit_text(e)
        limit = f"  (limit {limit})" if limit else ""
        lines.append(f"  {MARK[e.state]}  {e.label:<{width}}  {measured}{limit}")
    for e in record.checks:
        lines.append(f"  {MARK[e.state]}  {e.label:<{width}}  {e.detail}")
    return lines
