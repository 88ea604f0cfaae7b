"""The board target: a real Arduino running the firmware, on a serial port."""

from __future__ import annotations

from collections.abc import Callable

import trio

from harness.transports.serialport import BAUD, SerialStream, find_arduino


class BoardTarget:
    name = "board"
    capabilities = frozenset({"reset"})
    truth = None

    def __init__(
        self, path: str | None, on_outage: Callable[[float, float | None], None], baud: int = BAUD
    ) -> None:
        self.path = path
        self.baud = baud
        self._on_outage = on_outage
        self._stream: SerialStream | None = None

    async def start(self, nursery: trio.Nursery, origin: float) -> trio.abc.Stream:
        self.path = self.path or find_arduino()
        self._stream = SerialStream(self.path, self.baud, self._on_outage)
        return self._stream

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.pulse_dtr()

    def describe(self) -> str:
        return f"board on {self.path or '(auto)'} at {self.baud} baud"
