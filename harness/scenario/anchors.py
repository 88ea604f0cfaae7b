"""Window ends anchored to what happens in a run: a time ("5s"), the scenario's `end`, a step
(`step sag`), the first alert of a status (`alert uv`), the host seeing a new boot (`reset`,
`reset 2` for the second), a boot (`boot`: the device's first hello of the run; `boot 2`: the
boot after the first reset), a device log line (`log 'ready'`, a regular expression searched
in each whole line), each with an optional offset (`step sag + 2s`, `end - 1s`).

A time, `end` and a step whose time is fixed by the file are known when the file is read; the
others become known when the run sees them (`Anchor.matches`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from harness.scenario.units import parse_duration

KINDS: Final = ("time", "end", "step", "alert", "reset", "boot", "log")
EVENT_KINDS: Final = ("step", "alert", "reset", "hello", "log")
"""The run events an anchor can wait for (their kinds as the run's bus names them)."""
SYNTAX: Final = (
    'expected a time ("5s"), "end", "step NAME", "alert uv", "reset", "boot" or "log \'text\'", '
    'optionally with an offset ("+ 2s", "- 500ms")'
)

_OFFSET: Final = re.compile(r"^(?P<head>.*?)\s*(?:(?P<sign>[+-])\s*(?P<off>\d[\w.]*))?\s*$")
_LOG: Final = re.compile(r"""^\s*log\s+(?P<q>['"])(?P<pattern>.*)(?P=q)(?P<rest>.*)$""")


@dataclass(frozen=True, slots=True)
class Anchor:
    kind: str
    """One of KINDS."""
    arg: Any = None
    """step: its name (a str) or number (an int); alert: the status; reset, boot: which one (1
    the first); log: the compiled pattern."""
    offset: float = 0.0
    """Seconds added to the moment."""
    text: str = ""
    """As written (for labels and messages)."""

    def matches(self, kind: str, data: dict[str, Any], seen: int) -> bool:
        """Whether a run event (its kind and data) is this anchor's moment; `seen` is how many
        earlier events this anchor counted (a reset anchor waits for its n-th)."""
        if self.kind == "boot":  # boot 1 is the run's first hello, boot n the (n-1)-th reset
            return (kind == "hello" and self.arg == 1) or (kind == "reset" and seen + 2 == self.arg)
        if kind != self.kind:
            return False
        match kind:
            case "step":
                key = "number" if isinstance(self.arg, int) else "name"
                return bool(data.get(key) == self.arg)
            case "alert":
                return bool(data.get("status") == self.arg)
            case "reset":
                return seen + 1 == self.arg
            case "log":
                return self.arg.search(str(data.get("text", ""))) is not None
        return False

    def counts(self, kind: str) -> bool:
        """Whether an event of this kind that is not its moment counts towards it."""
        return kind == "reset" and self.kind in ("reset", "boot")


@dataclass(frozen=True, slots=True)
class Span:
    """A window at least one end of which is known only when the run sees it."""

    lo: Anchor
    hi: Anchor
    fixed: tuple[float | None, float | None]
    """Each end's time when the file fixes it, else None."""

    def text(self) -> str:
        return f"{self.lo.text}..{self.hi.text}"


class Fixed(tuple[float, float]):
    """A window the file fixes through anchors (a step, the end): its (from, to) in seconds,
    and the words it was written in, for its label."""

    text: str

    def __new__(cls, lo: float, hi: float, text: str) -> Fixed:
        window = super().__new__(cls, (lo, hi))
        window.text = text
        return window


def parse(text: str) -> Anchor:
    """An anchor as written. Raises ValueError naming what is wrong (the caller checks that a
    step or status it names exists)."""
    stripped = text.strip()
    log = _LOG.match(stripped)
    head, rest = (stripped, "") if log is None else ("log", log.group("rest"))
    m = _OFFSET.match(rest if log is not None else head)
    if m is None:  # the pattern matches any text; kept for the type checker
        raise ValueError(SYNTAX)
    offset = 0.0
    if m.group("sign"):
        try:
            offset = parse_duration(m.group("off"))
        except ValueError:
            raise ValueError(f'"{text}": {SYNTAX}') from None
        offset = -offset if m.group("sign") == "-" else offset
    if log is not None:
        if m.group("head"):
            raise ValueError(f'"{text}": {SYNTAX}')
        try:
            pattern = re.compile(log.group("pattern"))
        except re.error as exc:
            raise ValueError(f'"{text}": not a regular expression: {exc}') from None
        return Anchor("log", pattern, offset, stripped)
    head = m.group("head")
    word, _, arg = head.partition(" ")
    arg = arg.strip()
    if word == "end" and not arg:
        return Anchor("end", None, offset, stripped)
    if word == "step" and arg:
        return Anchor("step", arg, offset, stripped)
    if word == "alert" and arg:
        return Anchor("alert", arg, offset, stripped)
    if word in ("reset", "boot"):
        if arg and not arg.isdigit():
            raise ValueError(f'"{text}": "{word}" or "{word} 2" (which {word} the host saw)')
        return Anchor(word, int(arg) if arg else 1, offset, stripped)
    try:
        return Anchor("time", None, parse_duration(head) + offset, stripped)
    except ValueError:
        raise ValueError(f'"{text}": {SYNTAX}') from None
