"""The Korad/Tenma KA3005P family (and its relabelled twins) over its serial protocol.

The protocol has no terminators and no acknowledgements: a command is bytes such as
`VSET1:5.00` or `OUT1`, the supply tells one command from the next by the pause between them
(hence at least `pacing` between two commands), and a query's reply is a fixed number of
bytes with nothing after it (`VOUT1?` gives `05.00`). So a setting is confirmed by reading it
back (`VSET1?`, `ISET1?`, the output bit of `STATUS?`), and it returns only once the supply
reports the new value: the time after the call is when it took effect.

pyserial blocks, so each exchange runs in a worker thread, one at a time per port (a
`trio.Lock` held across a setting and its confirmation); the pacing is kept in trio time.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

import serial
import trio

from harness.supplies.base import Readback, SupplyError
from harness.supplies.visa_errors import explain

T = TypeVar("T")
BAUD = 9600
PACING = 0.05
"""The least time between two commands: the supply joins bytes closer than that into one."""
GAP = 0.05
"""A reply has ended when no byte has come for this long (replies of unknown length)."""
REPLY = 5
"""Bytes in a reply to VSET?, ISET?, VOUT? and IOUT? ("05.00", "0.500")."""
IDN_MAX = 64
OUTPUT_BIT = 0x40
"""STATUS? answers one byte; this bit is set while the output is on."""
_NUMBER = re.compile(rb"\d+(?:\.\d+)?")


class KoradSupply:
    """A KA3005P-family supply on serial `port` (channel 1: the single-output models)."""

    max_rate = 5.0

    def __init__(
        self,
        port: str,
        *,
        channel: int = 1,
        baud: int = BAUD,
        timeout: float = 0.5,
        pacing: float = PACING,
        name: str | None = None,
    ) -> None:
        self.port = port
        self.name = name or f"korad:{port}"
        self.channel = channel
        self.baud = baud
        self.timeout = timeout
        self.pacing = pacing
        self._lock = trio.Lock()
        self._serial: serial.Serial | None = None
        self._last = -float("inf")
        self._idn: str | None = None
        self._closed = False

    def describe(self) -> str:
        what = self._idn or "Korad/Tenma KA3005P-family supply"
        return f"{self.name}: {what} (serial, {self.baud} baud, settings confirmed by readback)"

    # --- one command or query at a time, paced, in a worker thread -------------------------

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if self._serial is None:
                self._serial = serial.Serial(
                    self.port, self.baud, timeout=self.timeout, exclusive=True
                )
            return fn(*args)
        except SupplyError:
            raise
        except Exception as exc:
            err = explain(self.port, exc, self.timeout)
            if err is None:
                raise
            self._drop()
            raise err from None

    def _drop(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(Exception):  # a port already gone has nothing to close
                port.close()

    async def _paced(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one exchange once `pacing` has passed since the last; the lock is held."""
        if self._closed:
            raise SupplyError(f"{self.name}: used after it was closed")
        await trio.sleep_until(self._last + self.pacing)
        try:
            return await trio.to_thread.run_sync(self._guarded, fn, *args)
        finally:
            self._last = trio.current_time()

    def _write(self, command: str) -> None:
        assert self._serial is not None
        self._serial.write(command.encode("ascii"))
        self._serial.flush()

    def _ask(self, command: str, length: int) -> bytes:
        """Write a query and read its reply: `length` bytes, or fewer followed by a pause
        (replies of a firmware that answers shorter). Stale bytes are dropped first, so a reply
        longer than expected cannot shift every later one."""
        port = self._serial
        assert port is not None
        port.reset_input_buffer()
        self._write(command)
        port.timeout = self.timeout
        data = bytearray(port.read(1))
        if not data:
            raise SupplyError(
                f"{self.port}: no answer to {command} within {self.timeout:g} s (is it a "
                f"Korad/Tenma supply, on, at {self.baud} baud?)"
            )
        port.timeout = GAP
        while len(data) < length:
            more = port.read(length - len(data))
            if not more:
                break
            data += more
        return bytes(data)

    def _number(self, command: str) -> float:
        reply = self._ask(command, REPLY)
        found = _NUMBER.search(reply)
        if found is None:
            raise SupplyError(f"{self.name}: answered {reply!r} to {command}, not a number")
        return float(found.group())

    async def _confirm(self, command: str, query: str, wanted: float, resolution: float) -> None:
        async with self._lock:
            await self._paced(self._write, command)
            got = await self._paced(self._number, query)
        if abs(got - wanted) > resolution / 2 + 1e-9:
            raise SupplyError(
                f"{self.name}: the supply did not take {command} ({query} reads {got:g}; is "
                "the value within its range?)"
            )

    # --- the Supply protocol ---------------------------------------------------------------

    async def identify(self) -> str:
        async with self._lock:
            reply = await self._paced(self._ask, "*IDN?", IDN_MAX)
        self._idn = reply.decode("ascii", "replace").strip()
        return self._idn

    async def set_volts(self, volts: float) -> None:
        wanted = round(volts, 2)
        ch = self.channel
        await self._confirm(f"VSET{ch}:{wanted:.2f}", f"VSET{ch}?", wanted, 0.01)

    async def set_current_limit(self, amps: float) -> None:
        wanted = round(amps, 3)
        ch = self.channel
        await self._confirm(f"ISET{ch}:{wanted:.3f}", f"ISET{ch}?", wanted, 0.001)

    async def output(self, on: bool) -> None:
        async with self._lock:
            await self._paced(self._write, "OUT1" if on else "OUT0")
            status = await self._paced(self._ask, "STATUS?", 1)
        if bool(status[0] & OUTPUT_BIT) != on:
            state = "on" if on else "off"
            raise SupplyError(
                f"{self.name}: the output did not switch {state} (STATUS? {status!r})"
            )

    async def measure(self) -> Readback:
        ch = self.channel
        async with self._lock:
            volts = await self._paced(self._number, f"VOUT{ch}?")
            amps = await self._paced(self._number, f"IOUT{ch}?")
        return Readback(volts, amps)

    async def aclose(self) -> None:
        """Close the port (the output stays as last set), also when the caller is cancelled."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                self._closed = True
                await trio.to_thread.run_sync(self._drop)
