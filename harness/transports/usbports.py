"""A serial port's USB identity (vendor and product id, serial number), read from pyserial's
port list, so a board that re-enumerates at another path after an unplug (/dev/ttyACM0 comes
back as /dev/ttyACM1) is found again."""

from __future__ import annotations

import os
from dataclasses import dataclass

import serial.tools.list_ports


@dataclass(frozen=True, slots=True)
class UsbId:
    vid: int
    pid: int
    serial_number: str | None
    """None for bridges that have none (many CH340 clones): then VID:PID must be unique."""

    def __str__(self) -> str:
        serial = f" serial {self.serial_number}" if self.serial_number else ""
        return f"USB {self.vid:04X}:{self.pid:04X}{serial}"


def usb_id_of(path: str) -> UsbId | None:
    """The USB identity of the port at `path` (a udev symlink is followed), or None if it is
    not a USB port (a pty, a UART on the board) or not listed. Blocking: it reads sysfs."""
    real = os.path.realpath(path)
    for port in serial.tools.list_ports.comports():
        if port.vid is not None and os.path.realpath(port.device) == real:
            return UsbId(port.vid, port.pid, port.serial_number)
    return None


def find_usb_id(usb_id: UsbId) -> str | None:
    """The path of the one port with this identity now, or None if there is none or several
    (boards without a serial number, alike, cannot be told apart). Blocking: it reads sysfs."""
    found = [
        port.device
        for port in serial.tools.list_ports.comports()
        if (port.vid, port.pid, port.serial_number)
        == (usb_id.vid, usb_id.pid, usb_id.serial_number)
    ]
    return found[0] if len(found) == 1 else None
