"""The run record: everything a run concluded, typed, and written as JSON (`--json`, the keys
docs/scenarios.md documents) and JUnit XML (`--junit`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.link.seqnum import boot_is_newer


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    name: str
    file: str
    description: str
    duration: float | None
    """Seconds; None for `harness monitor`, which runs until it is stopped."""


@dataclass(frozen=True, slots=True)
class HelloInfo:
    """The device's last hello."""

    fw: str
    boot: int
    interval: int
    """Milliseconds between reports."""
    win: int


@dataclass(frozen=True, slots=True)
class ResetInfo:
    at: float
    """Scenario seconds when the host saw the new boot."""
    old_boot: int
    new_boot: int
    samples_lost: int
    time_lost: float | None
    """Device time with no sample across the reset; None until the new boot's first sample."""
    counter_advanced: bool = field(init=False)
    """False for a restart whose boot counter stayed or went back (an erased EEPROM, a swapped
    board): the host tells such a restart only by asking the device (docs/protocol.md R10)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "counter_advanced", boot_is_newer(self.new_boot, self.old_boot))


@dataclass(frozen=True, slots=True)
class SilenceInfo:
    """A span with no sample while the device was expected to report."""

    at: float
    """Scenario seconds when the run declared the device silent."""
    last_sample: float | None
    """When the last sample before it arrived (None: none had)."""
    until: float | None
    """When samples came again (None: not before the run ended)."""


@dataclass(frozen=True, slots=True)
class OtherDeviceInfo:
    """The port led to another device than the run began with."""

    at: float
    detail: str


@dataclass(frozen=True, slots=True)
class LogInfo:
    """A `#` line the device sent."""

    at: float
    """Scenario seconds when it arrived."""
    text: str
    """After the `#`, trimmed."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    hello: HelloInfo | None
    boots: list[int]
    resets: list[ResetInfo]
    silences: list[SilenceInfo] = field(default_factory=list)
    other_devices: list[OtherDeviceInfo] = field(default_factory=list)
    log: list[LogInfo] = field(default_factory=list)
    """The device's log lines, the first `harness.runner.observer.LOG_KEPT` (the store keeps
    every one as an event)."""
    log_lines: int = 0
    """How many log lines arrived in all."""


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    number: int
    label: str
    state: str
    """pass, marginal (inside its limits by less than its band), fail, skipped (a stopped run
    never reached what it judges) or pending."""
    measured: float | str | None
    detail: str
    limit: str = ""
    """Its limits with their units ("< 3.2 V (marginal within 50 mV)"); "" for a kind without."""
    unit: str = ""
    """The base unit `measured` is in (V, A, W, J, C, s; "" for a count or a kind without)."""
    margin: float | None = None
    """How far `measured` is inside its nearest limit, in `unit` (negative: outside by that
    much); None for a kind without limits, a `value` limit, or nothing measured."""
    device: str | None = None
    """The device it judged, in a run of several (its label then starts with the name)."""


@dataclass(slots=True)
class LinkTotals:
    """The link's totals at the run's end (docs/scenarios.md, "Link totals")."""

    delivered: int = 0
    lost: int = 0
    lost_to_resets: int = 0
    duplicated: int = 0
    commands_sent: int = 0
    commands_done: int = 0
    commands_failed: int = 0
    commands_executed_twice: int = 0
    retransmissions: int = 0
    corrupt: int = 0
    gaps: int = 0
    resets: int = 0
    nacks_sent: int = 0
    acks_sent: int = 0
    duplicates_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class CommandRecord:
    handle: int
    name: str
    args: dict[str, Any]
    step: int | None
    """The [[step]] number that sent it."""
    issued: float
    outcome: str
    """pending, done or failed."""
    latency: float | None
    reason: str | None
    reapplied: bool = False
    """Sent by the run itself after a new boot, to restore a setting the scenario had sent
    (then `step` is None)."""
    device: str | None = None
    """The device it went to, in a run of several."""


@dataclass(frozen=True, slots=True)
class SupplySettingInfo:
    """One setting the bench supply acknowledged; times in scenario seconds."""

    what: str
    """volts, current_limit or output."""
    value: float | bool
    due: float
    """When the profile wanted it."""
    at: float
    """When the supply acknowledged it (when it took effect)."""
    latency: float
    """Seconds from the request to the acknowledgement."""
    point: int | None
    """The [[supply]] point it reaches (numbered from 1), None for a ramp step, the start's
    current limit and output, and the end."""


@dataclass(frozen=True, slots=True)
class ReadbackInfo:
    at: float
    """Scenario seconds it was taken."""
    volts: float
    amps: float


@dataclass(frozen=True, slots=True)
class SupplyInfo:
    """The bench supply that fed the rail (docs/scenarios.md, "The supply")."""

    name: str
    identity: str
    description: str
    limits: dict[str, float | None]
    limits_from: str
    """The bench file's path, or "scenario" (the profile's own maxima)."""
    by_hand: bool
    """The profile was applied by a person (the manual supply): times are announcements'."""
    settings: list[SupplySettingInfo]
    settings_total: int
    settings_skipped: int
    """Planned ramp settings left out because the supply was behind."""
    latency_max: float | None
    latency_median: float | None
    readbacks: list[ReadbackInfo]
    readbacks_total: int
    readback_every: int
    """1: every readback is in `readbacks`; n: every n-th (a long run's, evenly thinned)."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One device's section of the record: what it did and how it was judged."""

    name: str
    target: str
    verdict: str
    """pass, marginal, fail or error (its link ended before the run did)."""
    error: str | None
    device: DeviceInfo
    expectations: list[ExpectationResult]
    checks: list[ExpectationResult]
    link: LinkTotals
    injected: dict[str, int] = field(default_factory=dict)
    injected_by_direction: dict[str, dict[str, int]] = field(default_factory=dict)
    commands: list[CommandRecord] = field(default_factory=list)
    supply: SupplyInfo | None = None
    port: str | None = None
    """A board's serial port."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    scenario: ScenarioInfo
    target: str
    seed: int
    started: str
    """ISO 8601, seconds, UTC."""
    wall_seconds: float
    virtual_time: bool
    verdict: str
    """pass, marginal, fail, error, interrupted or stopped."""
    error: str | None
    device: DeviceInfo
    expectations: list[ExpectationResult]
    """The scenario's [[expect]] entries (and its steps' ack_within), in its order."""
    checks: list[ExpectationResult]
    """What every run checks besides the scenario's expectations: "device kept reporting"."""
    link: LinkTotals
    strict: bool = False
    """Run with --strict: a marginal verdict exits 1, and JUnit counts marginal as a failure."""
    injected: dict[str, int] = field(default_factory=dict)
    injected_by_direction: dict[str, dict[str, int]] = field(default_factory=dict)
    commands: list[CommandRecord] = field(default_factory=list)
    supply: SupplyInfo | None = None
    """The bench supply the run drove; None when it drove none."""
    devices: list[DeviceRecord] = field(default_factory=list)
    """A section per device, in the scenario's order. With one device the fields above are
    its own; with several, `expectations`, `checks` and `commands` hold every device's (each
    labelled with its name), `link` and `injected` their sums, `device` and `supply` the first
    device's."""

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON holds it."""
        return asdict(self)


def write_json(record: RunRecord, path: Path) -> None:
    _write(path, json.dumps(record.as_dict(), indent=2, default=str) + "\n")


def junit_xml(record: RunRecord) -> str:
    """One testsuite (the scenario), one testcase per expectation and per check every run
    makes, each with its state, limit and measured value as properties; a failure carries the
    measured value (a marginal one is a failure only under --strict). Jenkins and GitLab read
    this shape."""
    import xml.etree.ElementTree as ET  # only with --junit: a run without it never loads xml

    expectations = [*record.expectations, *record.checks]
    passing = ("pass",) if record.strict else ("pass", "marginal")
    failures = sum(e.state not in (*passing, "skipped") for e in expectations)
    suite = ET.Element(
        "testsuite",
        name=record.scenario.name,
        tests=str(len(expectations)),
        failures=str(failures),
        errors="0",
        skipped=str(sum(e.state == "skipped" for e in expectations)),
        time=f"{record.wall_seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("target", record.target),
        ("seed", record.seed),
        ("verdict", record.verdict),
        *_supply_properties(record.supply),
        ("strict", str(record.strict).lower()),
        ("marginal", sum(e.state == "marginal" for e in expectations)),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    for e in expectations:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"powerhil.{record.scenario.name}",
            name=e.label,
            time="0",
        )
        case_props = ET.SubElement(case, "properties")
        for key, value in (("state", e.state), ("limit", e.limit), ("measured", e.detail)):
            if value:
                ET.SubElement(case_props, "property", name=key, value=value)
        if e.state == "skipped":
            ET.SubElement(case, "skipped", message=e.detail)
        elif e.state not in passing:
            failure = ET.SubElement(
                case, "failure", message=f"measured: {e.detail or e.measured}", type=e.state
            )
            failure.text = json.dumps(asdict(e))
    out = ET.SubElement(suite, "system-out")
    out.text = json.dumps({"link": record.link.as_dict(), "injected": record.injected})
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def _supply_properties(supply: SupplyInfo | None) -> list[tuple[str, object]]:
    if supply is None:
        return []
    latency = "" if supply.latency_max is None else f"{supply.latency_max:.4f}"
    return [
        ("supply", supply.name),
        ("supply_identity", supply.identity),
        ("supply_by_hand", str(supply.by_hand).lower()),
        ("supply_settings", supply.settings_total),
        ("supply_latency_max", latency),
    ]


def write_junit(record: RunRecord, path: Path) -> None:
    _write(path, junit_xml(record))


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
