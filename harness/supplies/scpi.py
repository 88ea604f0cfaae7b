"""Any SCPI bench supply through PyVISA, with the pure-Python pyvisa-py backend by default.

Resources are VISA strings: `TCPIP::HOST::5025::SOCKET` (a raw socket), `TCPIP::HOST::INSTR`
(VXI-11), `ASRL/dev/ttyUSB0::INSTR` (serial), `USB0::VID::PID::SERIAL::INSTR` (USB-TMC, with
the `usb` extra). The family is picked by `*IDN?` from `harness.supplies.dialects` unless the
user names it; every family goes through the same code below.

PyVISA blocks, so each exchange runs in a worker thread (`trio.to_thread`), one at a time per
instrument (a `trio.Lock`): a VISA session is not safe to share between threads, and a setting
and its acknowledgement must not be interleaved with another command. A worker thread is not
abandoned when its caller is cancelled: the exchange finishes (within the VISA timeout) so the
session never holds half an answer. After any I/O error the session is closed and the next
call opens a new one, for the same reason.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pyvisa
import trio
from pyvisa import constants

from harness.supplies.base import Readback, SupplyError
from harness.supplies.dialects import GENERIC, Dialect, dialect_for, dialect_named
from harness.supplies.visa_errors import explain

T = TypeVar("T")
ERROR_QUEUE_DEPTH = 32
"""At most this many stale errors are read from the queue when a session opens."""


def _no_delay(inst: Any) -> None:
    """Send each message at once on a raw socket. A setting is two small writes (the command,
    then its acknowledgement query); with Nagle's algorithm the second waits until the
    instrument acknowledges the first at the TCP level, which it delays while it has no reply
    to send, so every setting would wait out the instrument's delayed-ACK timer. VISA's
    attribute for this is tried first; pyvisa-py's socket session does not apply it, so there
    its socket is set directly."""
    try:
        inst.set_visa_attribute(constants.ResourceAttribute.tcpip_nodelay, constants.VI_TRUE)
        return
    except Exception:
        pass  # not applied by this backend: set the socket below
    session = getattr(inst.visalib, "sessions", {}).get(inst.session)
    sock = getattr(session, "interface", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ScpiSupply:
    """A SCPI supply on `resource`. `channel` None addresses the channel the supply has
    selected (channel 1 in dialects whose commands name one); `dialect` None picks the family
    by `*IDN?`; `backend` is PyVISA's (a pyvisa-sim YAML file `PATH@sim` in tests)."""

    max_rate = 50.0

    def __init__(
        self,
        resource: str,
        *,
        channel: int | None = None,
        dialect: str | None = None,
        timeout: float = 2.0,
        backend: str = "@py",
        name: str | None = None,
    ) -> None:
        self.resource = resource
        self.name = name or f"scpi:{resource}"
        self.channel = channel
        self.timeout = timeout
        self._forced = dialect_named(dialect) if dialect else None
        self.dialect: Dialect | None = self._forced
        self._backend = backend
        self._lock = trio.Lock()
        self._inst: Any = None
        self._idn: str | None = None
        self._closed = False

    def describe(self) -> str:
        channel = f", channel {self.channel}" if self.channel is not None else ""
        if self.dialect is None or self._idn is None:
            return f"{self.name}: SCPI supply (not identified yet){channel}"
        return f"{self.name}: {self._idn} ({self.dialect.title}){channel}"

    # --- the exchanges, each in a worker thread --------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            if self._closed:
                raise SupplyError(f"{self.name}: used after it was closed")
            return await trio.to_thread.run_sync(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if self._inst is None:
                self._open()
                if fn == self._identify:
                    return cast(T, self._idn)  # the session asked as it opened
            return fn(*args)
        except SupplyError:
            raise
        except Exception as exc:
            err = explain(self.resource, exc, self.timeout)
            if err is None:
                raise
            self._drop()
            raise err from None

    def _open(self) -> None:
        ms = max(1, round(self.timeout * 1000))
        # pyvisa gives every caller of one backend the same ResourceManager, and closing it
        # closes every instrument it opened: each supply closes only its own instrument.
        rm = pyvisa.ResourceManager(self._backend)
        inst = None
        try:
            inst = rm.open_resource(self.resource, open_timeout=ms)
            inst.timeout = ms
            self._terminate(inst, self._forced or GENERIC)
            idn = str(inst.query("*IDN?")).strip()
            if not idn:
                raise SupplyError(
                    f"{self.resource}: answered *IDN? with nothing (is it a SCPI instrument?)"
                )
            dialect = self._forced or dialect_for(idn)
            self._terminate(inst, dialect)
        except BaseException:
            if inst is not None:
                with contextlib.suppress(Exception):
                    inst.close()
            raise
        self._inst, self._idn, self.dialect = inst, idn, dialect
        try:
            if inst.resource_class == "SOCKET":
                _no_delay(inst)
            self._drain_errors()
            setup = (
                list(dialect.serial_setup)
                if inst.interface_type == constants.InterfaceType.asrl
                else []
            )
            if self.channel is not None and dialect.select:
                setup.append(dialect.select.format(ch=self.channel))
            for command in setup:
                self._set(command)
            if setup and dialect.opc:
                # *OPC? says a command is done, not that it was taken: a channel the supply
                # does not have is in its error queue.
                self._check_errors(", ".join(setup))
        except BaseException:
            # A session not set up (its channel not selected) must not be used: the next
            # call opens a new one and sets it up again.
            self._drop()
            raise

    @staticmethod
    def _terminate(inst: Any, dialect: Dialect) -> None:
        inst.write_termination = dialect.write_termination
        inst.read_termination = dialect.read_termination

    def _drop(self) -> None:
        inst = self._inst
        self._inst = None
        if inst is not None:
            with contextlib.suppress(Exception):  # a broken session has nothing to close
                inst.close()

    def _dialect(self) -> Dialect:
        assert self.dialect is not None  # set by _open, which every exchange runs first
        return self.dialect

    def _set(self, command: str) -> None:
        """Write a setting and wait for the dialect's acknowledgement."""
        d = self._dialect()
        self._inst.write(command)
        if d.opc:
            reply = str(self._inst.query("*OPC?")).strip()
            if reply not in ("1", "+1"):
                raise SupplyError(
                    f'{self.name}: answered {reply!r} to *OPC? after "{command}" (expected 1)'
                )
            return
        self._check_errors(command)

    def _check_errors(self, commands: str) -> None:
        d = self._dialect()
        reply = str(self._inst.query(d.error_query)).strip()
        if not re.match(d.no_error, reply):
            raise SupplyError(f'{self.name}: the supply refused "{commands}": {reply}')

    def _drain_errors(self) -> None:
        """Empty the error queue, so an old error is not taken for our first setting's."""
        d = self._dialect()
        for _ in range(ERROR_QUEUE_DEPTH):
            if re.match(d.no_error, str(self._inst.query(d.error_query)).strip()):
                return

    def _number(self, command: str) -> float:
        reply = str(self._inst.query(command)).strip()
        try:
            return float(reply)
        except ValueError:
            raise SupplyError(
                f'{self.name}: answered {reply!r} to "{command}", not a number (is it a '
                f"{self._dialect().title}? name its dialect in the bench file)"
            ) from None

    def _format(self, template: str, **values: object) -> str:
        return template.format(ch=self.channel or 1, **values)

    def _identify(self) -> str:
        self._idn = str(self._inst.query("*IDN?")).strip()
        return self._idn

    def _measure(self) -> Readback:
        d = self._dialect()
        return Readback(
            self._number(self._format(d.measure_volts)),
            self._number(self._format(d.measure_amps)),
        )

    # --- the Supply protocol ---------------------------------------------------------------

    async def identify(self) -> str:
        return await self._run(self._identify)

    async def set_volts(self, volts: float) -> None:
        await self._run(lambda: self._set(self._format(self._dialect().set_volts, volts=volts)))

    async def set_current_limit(self, amps: float) -> None:
        await self._run(lambda: self._set(self._format(self._dialect().set_amps, amps=amps)))

    async def output(self, on: bool) -> None:
        def switch() -> None:
            d = self._dialect()
            self._set(self._format(d.output, state=d.on if on else d.off))

        await self._run(switch)

    async def measure(self) -> Readback:
        return await self._run(self._measure)

    async def aclose(self) -> None:
        """Close the session (the output stays as last set). Shielded: a cancelled caller
        still lets go of the instrument, within the VISA timeout."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                if self._closed:
                    return
                self._closed = True
                await trio.to_thread.run_sync(self._drop)
