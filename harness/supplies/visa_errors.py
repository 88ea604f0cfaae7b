"""What went wrong reaching an instrument through PyVISA, as one line a user can act on.

pyvisa-py reports a problem in several shapes (a VisaIOError with a status code, the socket's
own OSError, pyserial's SerialException, a plain Exception naming the cause), and some only at
the first write: a refused TCP connection surfaces when the first command is sent. Everything
is read here, so the driver's every call says the same thing for the same cause.
"""

from __future__ import annotations

import errno
import socket

import serial
from pyvisa import constants
from pyvisa.errors import VisaIOError

from harness.supplies.base import SupplyError

EXAMPLES = (
    "TCPIP::192.168.1.50::5025::SOCKET, TCPIP::192.168.1.50::INSTR, "
    "ASRL/dev/ttyUSB0::INSTR, USB0::0x2A8D::0x1102::MY12345678::INSTR"
)


def _no_answer(resource: str, timeout: float) -> SupplyError:
    return SupplyError(
        f"{resource}: no answer within {timeout:g} s (is the supply on and is this its address "
        "and port? does it end its replies with a line feed?)"
    )


def explain(resource: str, exc: BaseException, timeout: float) -> SupplyError | None:
    """The one-line error for `exc` met while talking to `resource`; None if `exc` is not a
    problem with the instrument or the way to it (then it is a bug and goes up as it is)."""
    text = str(exc)
    if isinstance(exc, VisaIOError):
        code = exc.error_code
        if code == constants.StatusCode.error_timeout:
            return _no_answer(resource, timeout)
        if code == constants.StatusCode.error_invalid_resource_name:
            return SupplyError(f"{resource}: not a VISA resource string (examples: {EXAMPLES})")
        if code == constants.StatusCode.error_resource_not_found:
            return SupplyError(f"{resource}: no such instrument (is it plugged in and on?)")
        return SupplyError(f"{resource}: {exc.description or text}")
    if isinstance(exc, ConnectionRefusedError):
        return SupplyError(
            f"{resource}: connection refused: nothing listens on that port (is it the supply's "
            "SCPI port, 5025 on most, and is its LAN remote control on?)"
        )
    if isinstance(exc, socket.gaierror) or "Name or service not known" in text:
        return SupplyError(f"{resource}: no such host (check the supply's address or name)")
    if isinstance(exc, socket.timeout | TimeoutError) or "error_timeout" in text:
        return _no_answer(resource, timeout)
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return SupplyError(
            f"{resource}: the supply closed the connection (another program may have taken its "
            "one remote session; close it and retry)"
        )
    if isinstance(exc, serial.SerialException):
        if exc.errno == errno.ENOENT or "No such file" in text:
            return SupplyError(
                f"{resource}: no such serial port (is the supply's cable plugged in?)"
            )
        if exc.errno == errno.EACCES or "Permission denied" in text:
            return SupplyError(
                f"{resource}: permission denied (add yourself to the dialout group, then log in "
                "again)"
            )
        return SupplyError(f"{resource}: serial port problem: {text}")
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return SupplyError(f"{resource}: host unreachable (check the address and the cable)")
        return SupplyError(f"{resource}: {exc.strerror or text}")
    if isinstance(exc, ValueError) and "PyUSB" in text:
        return SupplyError(f"{resource}: USB instruments need PyUSB: pip install 'powerhil[usb]'")
    if isinstance(exc, ValueError) and "resource" in text.lower():
        return SupplyError(f"{resource}: not a VISA resource string (examples: {EXAMPLES})")
    if type(exc) is Exception and text.startswith("could not connect"):
        return SupplyError(f"{resource}: {text}")
    return None
