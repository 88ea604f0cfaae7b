"""How a user names a supply, `DRIVER:RESOURCE`, and the driver that name makes.

    scpi:TCPIP::192.168.1.50::5025::SOCKET    a SCPI supply through PyVISA
    korad:/dev/ttyUSB0                        a Korad/Tenma KA3005P-family supply
    manual                                    set by hand, each setting announced

The same fields come from a bench file's [supply] table (harness.supplies.bench).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from harness.errors import UserError
from harness.scenario.reader import suggest
from harness.supplies.base import Supply

DRIVERS = {
    "scpi": "scpi:RESOURCE, e.g. scpi:TCPIP::192.168.1.50::5025::SOCKET",
    "korad": "korad:PORT, e.g. korad:/dev/ttyUSB0",
    "manual": "manual",
}


@dataclass(frozen=True, slots=True)
class SupplySpec:
    driver: str
    resource: str = ""
    channel: int | None = None
    dialect: str | None = None
    """SCPI only: a name from harness.supplies.dialects.DIALECTS; None: chosen by *IDN?."""
    timeout: float | None = None
    """Seconds to wait for an answer; None: the driver's own."""

    @property
    def name(self) -> str:
        return self.driver if not self.resource else f"{self.driver}:{self.resource}"


def driver_problem(driver: str, resource: str) -> str | None:
    """What is wrong with naming a supply so, or None."""
    if driver not in DRIVERS:
        choices = ", ".join(DRIVERS.values())
        return f'unknown supply driver "{driver}"{suggest(driver, DRIVERS)}; use {choices}'
    if driver == "manual" and resource:
        return "a manual supply takes no resource (write just: manual)"
    if driver != "manual" and not resource:
        return f"{driver} needs a resource: {DRIVERS[driver]}"
    return None


def parse_supply(text: str, where: str = "--supply") -> SupplySpec:
    """`DRIVER:RESOURCE` (or `manual`) as a spec; a wrong name is one line starting with
    `where` (the option or file it came from)."""
    driver, _, resource = text.strip().partition(":")
    driver = driver.strip().lower()
    resource = resource.strip()
    if problem := driver_problem(driver, resource):
        gap = "" if where.endswith("=") else " "  # "--supply left=" names a device's
        raise UserError(f"{where}{gap}{text}: {problem}")
    return SupplySpec(driver, resource)


def make_supply(
    spec: SupplySpec, *, say: Callable[[str], None] | None = None, backend: str = "@py"
) -> Supply:
    """The driver for `spec`, not yet connected (the first call connects). `say` receives a
    manual supply's announcements (default: standard error); `backend` is PyVISA's."""
    timeout = {} if spec.timeout is None else {"timeout": spec.timeout}
    if spec.driver == "scpi":
        from harness.supplies.scpi import ScpiSupply

        return ScpiSupply(
            spec.resource,
            channel=spec.channel,
            dialect=spec.dialect,
            backend=backend,
            name=spec.name,
            **timeout,
        )
    if spec.driver == "korad":
        from harness.supplies.korad import KoradSupply

        return KoradSupply(spec.resource, channel=spec.channel or 1, name=spec.name, **timeout)
    if spec.driver == "manual":
        from harness.supplies.manual import ManualSupply

        return ManualSupply(say)
    raise UserError(f"{spec.name}: {driver_problem(spec.driver, spec.resource)}")


@asynccontextmanager
async def open_supply(
    spec: SupplySpec, *, say: Callable[[str], None] | None = None, backend: str = "@py"
) -> AsyncIterator[Supply]:
    """The supply, identified (so a wrong address fails here, before a run starts), closed
    when the block is left, also when it is cancelled."""
    supply = make_supply(spec, say=say, backend=backend)
    try:
        await supply.identify()
        yield supply
    finally:
        with trio.CancelScope(shield=True):
            await supply.aclose()
