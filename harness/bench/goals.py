"""What `harness bench` reports: each goal the architecture holds us to (docs/architecture.md)
with its target and the measured value, the other figures by group, and the machine they were
measured on."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Goal:
    group: str
    name: str
    measured: float
    target: float
    op: Literal[">=", "<=", "=="]
    unit: str = ""

    @property
    def met(self) -> bool:
        if self.op == ">=":
            return self.measured >= self.target
        if self.op == "<=":
            return self.measured <= self.target
        return self.measured == self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "target": f"{self.op} {self.target:g}{' ' + self.unit if self.unit else ''}",
            "target_value": self.target,
            "measured": self.measured,
            "unit": self.unit,
            "met": self.met,
        }


@dataclass
class Group:
    """One measured group: its goals, its other figures, or why it was skipped."""

    name: str
    goals: list[Goal] = field(default_factory=list)
    figures: dict[str, float | str] = field(default_factory=dict)
    skipped: str | None = None
    failed: str | None = None
    """Why the group could not measure (it counts as a missed goal)."""
    seconds: float = 0.0

    def goal(
        self,
        name: str,
        measured: float,
        op: Literal[">=", "<=", "=="],
        target: float,
        unit: str = "",
    ) -> None:
        self.goals.append(Goal(self.name, name, measured, target, op, unit))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next(
            (x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), ""
        )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "load_1min_at_start": round(load[0], 2),
    }


@dataclass
class Report:
    quick: bool
    machine: dict[str, Any]
    groups: list[Group] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def goals(self) -> list[Goal]:
        return [g for group in self.groups for g in group.goals]

    @property
    def met(self) -> bool:
        return all(g.met for g in self.goals) and not any(g.failed for g in self.groups)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "seconds": round(self.seconds, 1),
            "machine": self.machine,
            "met": self.met,
            "goals": [g.as_dict() for g in self.goals],
            "figures": {g.name: g.figures for g in self.groups if g.figures},
            "skipped": {g.name: g.skipped for g in self.groups if g.skipped},
            "failed": {g.name: g.failed for g in self.groups if g.failed},
        }

    def json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def table(self) -> str:
        m = self.machine
        lines = [
            f"harness bench{' --quick' if self.quick else ''}: {m['cpu']}, {m['cores']} cores, "
            f"Python {m['python']}, SQLite {m['sqlite']}, load {m['load_1min_at_start']}",
            "",
            f"{'goal':44} {'target':>16} {'measured':>14}  met",
        ]
        for g in self.goals:
            target = f"{g.op} {g.target:,.6g}"
            measured = f"{g.measured:,.{_decimals(g.measured)}f}"
            lines.append(
                f"{g.group + ': ' + g.name:44} {target:>16} {measured:>14}  "
                f"{'yes' if g.met else 'NO'}{' ' + g.unit if g.unit else ''}"
            )
        for group in self.groups:
            if group.skipped:
                lines.append(f"{group.name}: skipped ({group.skipped})")
            if group.failed:
                lines.append(f"{group.name}: FAILED ({group.failed})")
        lines.append("")
        for group in self.groups:
            for key, value in group.figures.items():
                lines.append(f"{group.name:9} {key:34} {_shown(value):>16}")
        missed = [f"{g.group}: {g.name}" for g in self.goals if not g.met]
        missed += [f"{g.name}: failed" for g in self.groups if g.failed]
        verdict = "NOT MET: " + ", ".join(missed) if missed else "every goal met"
        lines += ["", f"{verdict} ({self.seconds:.0f} s)"]
        return "\n".join(lines)


def _shown(value: object) -> str:
    """A figure for the table: numbers with sensible decimals, lists of them comma-separated."""
    if isinstance(value, list):
        return " / ".join(_shown(x) for x in value)
    if isinstance(value, int | float):
        return f"{value:,.{_decimals(value)}f}"
    return str(value)


def _decimals(x: float) -> int:
    x = abs(x)
    return 0 if x >= 1000 or x == int(x) else 1 if x >= 100 else 2 if x >= 1 else 4
