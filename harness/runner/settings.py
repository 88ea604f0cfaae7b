"""The settings a scenario has sent, to send again after the device boots anew.

The device keeps its settings in RAM (docs/protocol.md §7): a reset or a brown-out brings it back
reporting every second with its thresholds off. A test harness that let that pass would judge
the rest of the run against a device the scenario never configured, so after each new boot the
run sends the last value of each setting again, in the order they were last sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SETTINGS = ("set_interval", "set_threshold", "set_avg")
"""The commands that change what the device does from then on (`hello` and `ping` do not)."""


class SentSettings:
    def __init__(self) -> None:
        self._last: dict[str, dict[str, Any]] = {}
        """By command, its arguments as last sent; the dict's order is the order last sent."""

    def sent(self, name: str, args: Mapping[str, Any]) -> None:
        """The scenario sent this command (its outcome does not matter: what counts is the
        setting the scenario asked for)."""
        if name not in SETTINGS:
            return
        merged = dict(args)
        if name == "set_threshold":  # each threshold keeps its own last value
            merged = {**self._last.get(name, {}), **merged}
        self._last.pop(name, None)
        self._last[name] = merged

    def to_reapply(self) -> list[tuple[str, dict[str, Any]]]:
        """The commands that bring a freshly booted device back to what the scenario set."""
        return [(name, dict(args)) for name, args in self._last.items()]
