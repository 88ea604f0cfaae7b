"""Reading the values of a scenario file: each reader checks one value's type and range and, when
it is wrong, gives the one-line error that names the file, the line and the key path.

The scenario loader and every expectation kind (harness.scenario.expect) read through it, so
every section words its problems the same way.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import UserError
from harness.scenario.units import format_duration, parse_duration

T = TypeVar("T")
Path_ = tuple[str | int, ...]
"""A key path in the file: table keys, and array entries numbered from 1."""


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) < 40 else text[:37] + "..."


class Reader:
    """Reads the values of one file; `locate` gives the line of a key path (None: not found)."""

    def __init__(self, file: str, locate: Callable[[Path_], int | None]) -> None:
        self.file = file
        self.locate = locate

    def fail(self, path: Path_, message: str) -> UserError:
        line = self.locate(path)
        where = f"{self.file}:{line}" if line else self.file
        return UserError(f"{where}: {dotted(path)}: {message}")

    def table(self, value: Any, path: Path_, allowed: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {show(value)}")
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key),
                    f"unknown key{suggest(key, allowed)}; expected one of: " + ", ".join(allowed),
                )
        return value

    def array(self, value: Any, path: Path_) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(
                path, f"expected an array of tables ([[{path[-1]}]]), got {show(value)}"
            )
        return value

    def convert(self, value: Any, path: Path_, fn: Callable[[Any], T]) -> T:
        try:
            return fn(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None

    def duration(self, value: Any, path: Path_) -> float:
        return self.convert(value, path, parse_duration)

    def number(self, value: Any, path: Path_, lo: float, hi: float, unit: str = "") -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {show(value)}")
        if not lo <= value <= hi:
            raise self.fail(path, f"{value:g}{unit} is outside {lo:g}..{hi:g}{unit}")
        return float(value)

    def integer(self, value: Any, path: Path_, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {show(value)}")
        if not lo <= value <= hi:
            raise self.fail(path, f"{value} is outside {lo}..{hi}")
        return value

    def string(self, value: Any, path: Path_, choices: Iterable[str] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {show(value)}")
        if choices is not None and value not in (choices := tuple(choices)):
            raise self.fail(
                path,
                f'unknown value "{value}"{suggest(value, choices)}; expected one of: '
                + ", ".join(choices),
            )
        return value

    def boolean(self, value: Any, path: Path_) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {show(value)}")
        return value

    def window(self, value: Any, path: Path_, duration: float) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(path, f'expected ["from", "to"], e.g. ["5s", "7s"], got {show(value)}')
        lo, hi = (self.duration(v, (*path, i + 1)) for i, v in enumerate(value))
        return self.check_window(lo, hi, path, duration)

    def check_window(
        self, lo: float, hi: float, path: Path_, duration: float
    ) -> tuple[float, float]:
        """A window whose ends are known: it starts before it ends, within the scenario."""
        if lo < 0:
            raise self.fail(path, f"starts before the run does ({format_duration(-lo)} before 0s)")
        if hi < lo:
            raise self.fail(
                path, f"ends ({format_duration(hi)}) before it starts ({format_duration(lo)})"
            )
        if lo > duration:
            raise self.fail(path, f"starts after the scenario ends ({format_duration(duration)})")
        if hi > duration + 1e-9:
            raise self.fail(
                path,
                f"ends ({format_duration(hi)}) after the scenario does "
                f"({format_duration(duration)}); end it by then",
            )
        return lo, hi


class Locator:
    """Finds the line of a key path in a TOML text (tomllib gives no positions): the path's
    section header (`[name]`, or the n-th `[[name]]` for an index), then its first key; a key
    written as a sub-table of its own (`[link.to_host]`) is found by that header."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _headers(self, name: str) -> list[int]:
        parts = r"\s*\.\s*".join(map(re.escape, name.split(".")))
        header = re.compile(r"^\s*\[\[?\s*" + parts + r"\s*\]\]?\s*(#.*)?$")
        return [i for i, line in enumerate(self.lines) if header.match(line)]

    def line_of(self, path: Path_) -> int | None:
        section, rest = str(path[0]), list(path[1:])
        index = rest.pop(0) if rest and isinstance(rest[0], int) else 1
        keys = [k for k in rest if isinstance(k, str)]
        if keys and self._headers(f"{section}.{keys[0]}"):
            section = f"{section}.{keys.pop(0)}"
        hits = self._headers(section)
        if not hits:
            return None
        start = hits[min(index, len(hits)) - 1]
        if not keys:
            return start + 1
        key = re.compile(r"^\s*" + re.escape(keys[0]) + r"\s*[=.]")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if key.match(self.lines[i]):
                return i + 1
        return start + 1


def read_toml(
    text: str, file: str, sections: Collection[str], required: str, what: str
) -> tuple[Reader, dict[str, Any]]:
    """The file's tables and a Reader that names their lines. Not TOML, an unknown section or
    a missing `required` one (whose `what` the message says) is one line naming the file."""
    r = Reader(file, Locator(text).line_of)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{file}: not valid TOML: {exc}") from None
    for key in data:
        if key not in sections:
            raise r.fail(
                (key,), f"unknown section{suggest(key, sections)}; expected: {', '.join(sections)}"
            )
    if required not in data:
        raise UserError(f"{file}: missing [{required}] ({what})")
    return r, data


def read_text(path: Path, what: str, missing: str = "") -> str:
    """A TOML file's text (`what`: "scenario file"). A UTF-8 byte order mark (as some Windows
    editors write) is skipped; a missing, unreadable or non-UTF-8 file is one line naming it
    (`missing` adds what to do when it is not there)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}{missing}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{path.name}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from None
