"""Durations as scenario files write them: "500ms", "2s", "1.5m", "1h", "30d", or a number of seconds."""

from __future__ import annotations

import math
import re
from typing import Final

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|min|h|d)?\s*$")
_SCALE: Final = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    None: 1.0,
}


def parse_duration(value: object) -> float:
    """Seconds for "500ms", "2s", "1m", "1h" or a bare number of seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "500ms" or "2s", got {value!r}')
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a duration is a finite number of seconds, not {value}")
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _SCALE[m.group(2)]
    raise ValueError(f'expected a duration like "500ms", "2s" or "1m", got {value!r}')


def format_duration(seconds: float) -> str:
    """A short human form: 250ms, 6s, 1.5s, 2m, 1h30m."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        m, s = divmod(seconds, 60)
        return f"{m:g}m" + (f"{s:g}s" if s else "")
    h, rest = divmod(seconds, 3600)
    return f"{h:g}h" + (f"{rest / 60:g}m" if rest else "")
