"""The board target: a real Arduino running the firmware, on a serial port."""

from __future__ import annotations

import trio

from harness.targets.base import OnTargetEvent, PortChange
from harness.transports.serialport import BAUD, SerialStream, find_arduino


class BoardTarget:
    name = "board"
    capabilities = frozenset({"reset"})
    truth = None

    def __init__(self, path: str | None, baud: int = BAUD) -> None:
        self.path = path
        self.baud = baud
        self._stream: SerialStream | None = None

    async def start(
        self, nursery: trio.Nursery, origin: float, on_event: OnTargetEvent
    ) -> trio.abc.Stream:
        path = self.path = self.path or find_arduino()

        def on_outage(start: float, end: float | None) -> None:
            on_event(
                PortChange(start, "unplugged", path)
                if end is None
                else PortChange(end, "replugged", path)
            )

        self._stream = SerialStream(self.path, self.baud, on_outage)
        return self._stream

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.pulse_dtr()

    def set_line_rate(self, rate: float | None) -> None:
        """The board's UART runs at its own baud; a link step's rate paces only the relay."""

    def describe(self) -> str:
        return f"board on {self.path or '(auto)'} at {self.baud} baud"

    async def why_it_ended(self) -> str | None:
        return None
