"""Field names, types, units and ranges of protocol v1 — the one place they are written down.

Every other module (framing, messages, commands, the mock, the store, the viewer) takes its key
names and limits from here; docs/protocol.md and tests/vectors/ restate them normatively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PROTOCOL: Final = "powerhil"
FIRMWARE_VERSION: Final = "1.0.0"

MAX_LINE: Final = 192
"""Longest frame line in bytes, counting `*`, the 4 CRC digits and the final newline."""
WINDOW: Final = 8
"""Unacknowledged samples a device may have outstanding."""
MAX_NACK_SEQS: Final = 4
"""Most seqs one NACK frame may carry."""
U32: Final = 0xFFFF_FFFF
U16: Final = 0xFFFF

# --- keys ---------------------------------------------------------------------------------
SEQ: Final = "seq"
BOOT: Final = "boot"
TS: Final = "ts"
DT: Final = "dt"
V: Final = "v"
A: Final = "a"
W: Final = "w"
VMIN: Final = "vmin"
VMAX: Final = "vmax"
AMAX: Final = "amax"
N: Final = "n"
STATUS: Final = "status"
HELLO: Final = "hello"
FW: Final = "fw"
INTERVAL: Final = "interval"
WIN: Final = "win"
CMD_SEQ: Final = "cmd"
"""In a hello: the seq of the last command this boot executed (-1: none yet)."""
ACK: Final = "ack"
NACK: Final = "nack"
RESULT: Final = "result"
ERR: Final = "err"
CMD: Final = "cmd"
VALUE: Final = "value"
UV: Final = "uv"
OC: Final = "oc"
OP: Final = "op"

SAMPLE_KEYS: Final = (SEQ, BOOT, TS, DT, V, A, W, VMIN, VMAX, AMAX, N, STATUS)
"""Sample keys in the order senders write them."""
MEASURES: Final = (V, A, W)
"""The quantities a sample measures, as scenarios' `measure` and the live statistics name them."""

# --- status -------------------------------------------------------------------------------
STATUS_OK: Final = "ok"
STATUS_UV: Final = "uv"
STATUS_OC: Final = "oc"
STATUS_OP: Final = "op"
STATUS_OVF: Final = "ovf"
STATUS_I2C: Final = "i2c"
STATUSES: Final = (STATUS_OK, STATUS_UV, STATUS_OP, STATUS_OC, STATUS_OVF, STATUS_I2C)
"""Status values from least to most severe; a sample carries the most severe of its readings."""
SEVERITY: Final = {s: i for i, s in enumerate(STATUSES)}


@dataclass(frozen=True, slots=True)
class Quantity:
    """A physical value on the wire: unit, inclusive range and the decimals senders write."""

    unit: str
    lo: float
    hi: float
    decimals: int

    @property
    def step(self) -> float:
        return 10.0**-self.decimals


VOLTS: Final = Quantity("V", 0.0, 32.768, 3)
AMPS: Final = Quantity("A", -32.768, 32.768, 4)
WATTS: Final = Quantity("W", 0.0, 1100.0, 3)

QUANTITY_OF: Final = {V: VOLTS, VMIN: VOLTS, VMAX: VOLTS, A: AMPS, AMAX: AMPS, W: WATTS}
"""Float sample fields and their quantity."""
U32_FIELDS: Final = (SEQ, TS, DT, N)
U16_FIELDS: Final = (BOOT,)

# --- commands -----------------------------------------------------------------------------
INTERVAL_MS: Final = (10, 60_000)
"""Inclusive range of set_interval's value, in ms."""
DEFAULT_INTERVAL_MS: Final = 1000
AVERAGING: Final = (1, 2, 4, 8, 16, 32, 64, 128)
"""INA219 sample averaging counts accepted by set_avg."""
DEFAULT_AVG: Final = 1
THRESHOLD_OF: Final = {UV: VOLTS, OC: AMPS, OP: WATTS}
"""set_threshold keys; 0 disables a threshold. Negative values are out of range."""
