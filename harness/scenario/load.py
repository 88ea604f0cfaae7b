"""Read and check a scenario file. Every problem is one line naming the file, the line where it
can be found, the key path and what is wrong, e.g.

    brownout.toml:23: step[2].send.cmd: unknown command "set_intervl" (did you mean "set_interval"?)

Array entries are numbered from 1, as a person counts them in the file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.faults import FaultConfig, GilbertElliott, LinkFaults
from harness.link import fields
from harness.link.commands import COMMANDS, check
from harness.scenario.expect import Context, entry_keys, kinds
from harness.scenario.expect.acked import AckExpect
from harness.scenario.expect.log import regex, waited_for
from harness.scenario.model import (
    DEFAULT_DEVICE,
    NAME_PATTERN,
    TARGETS,
    Action,
    Check,
    Device,
    DeviceSpec,
    Expect,
    Outage,
    Reset,
    Scenario,
    Send,
    SetLink,
    Step,
    Wait,
    WaitLog,
)
from harness.scenario.profile import Profile, SupplyPoint
from harness.scenario.reader import Path_, Reader, read_text, read_toml, show, suggest
from harness.scenario.units import format_duration

SECTIONS = ("scenario", "device", "link", "supply", "step", "expect")
SCENARIO_KEYS = ("name", "description", "duration", "seed", "parity")
DURATION_MAX = 31 * 86400.0  # 31d
"""The longest scenario: the raw log keeps 48 h by default and the minute rollups 30 days, so a
longer run could not be looked at whole afterwards."""
DEVICE_KEYS = ("shunt", "noise_v", "noise_a", "shared_rail", "brownout")
DEVICE_ENTRY_KEYS = ("name", "target", "serial", "link", *DEVICE_KEYS)
"""A [[device]] entry's keys: one of several devices."""
PROBABILITIES = ("drop", "corrupt", "duplicate", "reorder", "garbage")
LINK_KEYS = (*PROBABILITIES, "reorder_gap", "delay", "jitter", "baud", "burst")
DIRECTIONS = ("to_host", "to_device")
BURST_KEYS = ("p", "r", "bad_loss", "good_loss")
SUPPLY_KEYS = ("at", "volts", "amps")
ACTIONS = ("send", "link", "outage", "reset", "wait", "wait_log")
STEP_KEYS = ("at", "name", *ACTIONS, "ack_within", "timeout", "repeat", "every", "device")


# --- sections -----------------------------------------------------------------------------


def _faults(r: Reader, raw: dict[str, Any], path: Path_, base: FaultConfig) -> FaultConfig:
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        kp = (*path, key)
        if key in DIRECTIONS:
            continue
        if key in PROBABILITIES:
            changes[key] = r.number(value, kp, 0.0, 1.0)
        elif key == "reorder_gap":
            changes[key] = r.integer(value, kp, 1, 100)
        elif key in ("delay", "jitter"):
            changes[key] = r.duration(value, kp)
        elif key == "baud":
            changes["rate"] = r.integer(value, kp, 300, 10_000_000) / 10
        elif key == "burst":
            b = r.table(value, kp, BURST_KEYS)
            for k in ("p", "r"):
                if k not in b:
                    raise r.fail((*kp, k), "missing (Gilbert-Elliott needs p and r)")
            changes["burst"] = GilbertElliott(
                **{k: r.number(v, (*kp, k), 0.0, 1.0) for k, v in b.items()}
            )
    return base.with_changes(**changes)


def _link(r: Reader, raw: Any, path: Path_, base: LinkFaults) -> LinkFaults:
    t = r.table(raw, path, (*LINK_KEYS, *DIRECTIONS))
    both_host = _faults(r, t, path, base.to_host)
    both_device = _faults(r, t, path, base.to_device)
    to_host = _faults(
        r,
        r.table(t.get("to_host", {}), (*path, "to_host"), LINK_KEYS),
        (*path, "to_host"),
        both_host,
    )
    to_device = _faults(
        r,
        r.table(t.get("to_device", {}), (*path, "to_device"), LINK_KEYS),
        (*path, "to_device"),
        both_device,
    )
    return LinkFaults(to_host=to_host, to_device=to_device)


def _supply(r: Reader, raw: Any, duration: float) -> Profile:
    if raw is None:
        return Profile.constant(5.0, 0.25)
    points: list[SupplyPoint] = []
    last_at = -1.0
    for i, entry in enumerate(r.array(raw, ("supply",)), 1):
        path: Path_ = ("supply", i)
        t = r.table(entry, path, SUPPLY_KEYS)
        if "at" not in t:
            raise r.fail(path, 'missing "at" (when this point of the profile is reached)')
        at = r.duration(t["at"], (*path, "at"))
        if at < last_at:
            raise r.fail((*path, "at"), f"{format_duration(at)} comes before the previous point")
        if at > duration + 1e-9:
            raise r.fail(
                (*path, "at"),
                f"{format_duration(at)} is after the scenario ends ({format_duration(duration)})",
            )
        prev = points[-1] if points else None
        for key in ("volts", "amps"):
            if key not in t and prev is None:
                raise r.fail(path, f'the first point needs "{key}"')
        volts = (
            r.number(t["volts"], (*path, "volts"), 0.0, fields.VOLTS.hi, " V")
            if "volts" in t
            else prev.volts  # type: ignore[union-attr]
        )
        amps = (
            r.number(t["amps"], (*path, "amps"), -fields.AMPS.hi, fields.AMPS.hi, " A")
            if "amps" in t
            else prev.amps  # type: ignore[union-attr]
        )
        points.append(SupplyPoint(at, volts, amps))
        last_at = at
    if not points:
        raise r.fail(("supply",), "needs at least one point")
    return Profile(points)


def _send(r: Reader, raw: Any, path: Path_) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise r.fail(path, f'expected a table like {{ cmd = "ping" }}, got {show(raw)}')
    if "cmd" not in raw:
        raise r.fail(path, 'missing "cmd" (the command to send)')
    name = r.string(raw["cmd"], (*path, "cmd"))
    spec = COMMANDS.get(name)
    if spec is None:
        raise r.fail((*path, "cmd"), f'unknown command "{name}"{suggest(name, COMMANDS)}')
    args = {k: v for k, v in raw.items() if k != "cmd"}
    for key in args:
        if key not in spec.args:
            expected = ", ".join(spec.args) or "no arguments"
            raise r.fail((*path, key), f"{name} takes {expected}{suggest(key, spec.args)}")
    if err := check(name, args):
        missing = [k for k in spec.args if k not in args]
        if err == "arg" and spec.required and missing:
            raise r.fail(path, f'{name} needs "{missing[0]}"')
        if err == "arg" and not args:
            raise r.fail(path, f"{name} needs at least one of: {', '.join(spec.args)}")
        for key, value in args.items():
            arg_err = spec.args[key].check(value)
            if arg_err == "arg":
                raise r.fail((*path, key), f"expected a number, got {show(value)}")
            if arg_err == "range":
                a = spec.args[key]
                allowed = (
                    ", ".join(map(str, a.choices))
                    if a.choices
                    else f"0..{a.quantity.hi:g}"
                    if a.quantity
                    else f"{a.lo}..{a.hi}"
                )
                raise r.fail((*path, key), f"{show(value)} is out of range for {name} ({allowed})")
    return name, args


def _step_action(r: Reader, t: dict[str, Any], path: Path_, link: LinkFaults) -> Action:
    present = [a for a in ACTIONS if a in t]
    if len(present) != 1:
        what = "none" if not present else " and ".join(present)
        raise r.fail(path, f"a step does exactly one of: {', '.join(ACTIONS)} (this one: {what})")
    kind = present[0]
    kp = (*path, kind)
    if kind != "send" and "ack_within" in t:
        raise r.fail((*path, "ack_within"), "only a step that sends a command can expect its ack")
    if kind != "wait_log" and "timeout" in t:
        raise r.fail((*path, "timeout"), "only a step that waits (wait_log) has a timeout")
    if kind == "wait_log":
        if "timeout" not in t:
            raise r.fail(path, 'missing "timeout" (how long it waits for the line, e.g. "5s")')
        timeout = r.duration(t["timeout"], (*path, "timeout"))
        if timeout <= 0:
            raise r.fail((*path, "timeout"), "must be longer than 0s")
        return WaitLog(regex(r, t["wait_log"], kp), timeout)
    if kind == "send":
        name, args = _send(r, t["send"], kp)
        ack = r.duration(t["ack_within"], (*path, "ack_within")) if "ack_within" in t else None
        return Send(name, args, ack)
    if kind == "link":
        return SetLink(_link(r, t["link"], kp, link))
    if kind == "outage":
        value = t["outage"]
        if value == "stop":
            return Outage(None, stop=True)
        if value == "start":
            return Outage(None)
        return Outage(r.duration(value, kp))
    if kind == "reset":
        if t["reset"] is not True:
            raise r.fail(kp, "write reset = true")
        return Reset()
    return Wait(r.duration(t["wait"], kp))


def _device_key(r: Reader, t: dict[str, Any], path: Path_, names: tuple[str, ...]) -> str | None:
    """The device an entry names (`device = "left"`), None if it names none (each)."""
    if "device" not in t:
        return None
    name = r.string(t["device"], (*path, "device"))
    if name not in names:
        listed = ", ".join(names)
        raise r.fail(
            (*path, "device"), f'no [[device]] is called "{name}"{suggest(name, names)} ({listed})'
        )
    return name


def _steps(r: Reader, raw: Any, links: dict[str, LinkFaults], duration: float) -> tuple[Step, ...]:
    """The steps in time order. `links`: each device's faults at the start, by name; a link
    step changes the faults of each device it acts on from that device's own (in a scenario
    of several, one such step for each device), and a step without `at` follows the previous
    step of the devices it acts on."""
    if raw is None:
        return ()
    names = tuple(links)
    links = dict(links)
    steps: list[Step] = []
    cursors = dict.fromkeys(names, 0.0)
    for i, entry in enumerate(r.array(raw, ("step",)), 1):
        path: Path_ = ("step", i)
        t = r.table(entry, path, STEP_KEYS)
        device = _device_key(r, t, path, names)
        acts_on = names if device is None else (device,)
        action = _step_action(r, t, path, links[acts_on[0]])
        at = r.duration(t["at"], (*path, "at")) if "at" in t else max(cursors[n] for n in acts_on)
        repeat = r.integer(t.get("repeat", 1), (*path, "repeat"), 1, 100_000)
        every = r.duration(t["every"], (*path, "every")) if "every" in t else 0.0
        if repeat > 1 and "every" not in t:
            raise r.fail((*path, "repeat"), 'needs "every" (the time between repeats)')
        if "every" in t and repeat == 1:
            raise r.fail((*path, "every"), 'only makes sense with "repeat"')
        name = r.string(t["name"], (*path, "name")) if "name" in t else _default_name(action)
        last = at + every * (repeat - 1)
        if last > duration + 1e-9:
            raise r.fail(
                (*path, "at"),
                f"runs until {format_duration(last)}, "
                f"after the scenario ends ({format_duration(duration)})",
            )
        if isinstance(action, WaitLog) and repeat > 1:
            raise r.fail((*path, "repeat"), "a step that waits runs once")
        if isinstance(action, SetLink) and len(names) > 1:  # each device's from its own
            actions: list[tuple[str | None, Action]] = []
            for n in acts_on:
                links[n] = _link(r, t["link"], (*path, "link"), links[n])
                actions.append((n, SetLink(links[n])))
        else:
            if isinstance(action, SetLink):
                links[names[0]] = action.faults
            actions = [(device, action)]
        for k in range(repeat):
            steps.extend(Step(i, name, at + every * k, a, device=n) for n, a in actions)
        for n in acts_on:
            cursors[n] = last + (action.duration if isinstance(action, Wait) else 0.0)
    ordered = sorted(steps, key=lambda s: s.at)
    held: dict[int, set[str]] = {}  # by index: the devices whose wait_log holds the step
    for name in names:
        mine = [n for n, s in enumerate(ordered) if s.device in (None, name)]
        first = next(
            (k for k, n in enumerate(mine) if isinstance(ordered[n].action, WaitLog)), None
        )
        for n in mine[first + 1 :] if first is not None else ():
            held.setdefault(n, set()).add(name)
    for n, by in held.items():  # the steps after one that waits run when it is done
        if ordered[n].device is None and len(by) < len(names):
            raise r.fail(
                ("step", ordered[n].number),
                f"comes after a wait_log of {', '.join(sorted(by))} alone: name the device "
                'it acts on (device = "...")',
            )
        ordered[n] = dataclasses.replace(ordered[n], after_wait=True)
    return tuple(ordered)


def _default_name(action: Action) -> str:
    match action:
        case Send():
            return action.command
        case SetLink():
            return "link faults"
        case Outage(stop=True):
            return "outage stop"
        case Outage():
            return "outage"
        case Reset():
            return "reset"
        case Wait():
            return "wait"
        case WaitLog():
            return "wait_log"
    raise TypeError(action)


def _expect(cx: Context, t: dict[str, Any], path: Path_) -> Check:
    """The check of one [[expect]] entry, read by the kind whose key it has."""
    r = cx.reader
    registered = kinds()
    present = [kind for kind in registered if kind.key in t]
    if len(present) != 1:
        what = "none" if not present else " and ".join(kind.key for kind in present)
        listed = ", ".join(kind.key for kind in registered)
        raise r.fail(path, f"an expectation is exactly one of: {listed} (this one: {what})")
    kind = present[0]
    for key in t:
        if key not in (kind.key, "name", *kind.takes):
            raise r.fail(
                (*path, key),
                f"does not go with {kind.key} (it takes: {', '.join(kind.takes) or 'nothing else'})",
            )
    return kind.parse(cx, t, path)


def _of(steps: tuple[Step, ...], device: str | None) -> tuple[Step, ...]:
    """The steps a device runs (None: a scenario of one, all of them): an expectation's
    anchors name these."""
    return steps if device is None else tuple(s for s in steps if s.device in (None, device))


def _expects(
    r: Reader, raw: Any, duration: float, steps: tuple[Step, ...], names: tuple[str, ...]
) -> tuple[Expect, ...]:
    allowed = (*entry_keys(), "device")
    out: list[Expect] = []
    for i, entry in enumerate(r.array(raw, ("expect",)) if raw is not None else [], 1):
        path: Path_ = ("expect", i)
        t = r.table(entry, path, allowed)
        name = r.string(t["name"], (*path, "name")) if "name" in t else ""
        device = _device_key(r, t, path, names)
        t = {k: v for k, v in t.items() if k != "device"}
        if device is None and len(names) > 1:  # one for each device, on its own steps
            for judged in names:
                try:
                    check = _expect(Context(r, duration, _of(steps, judged)), t, path)
                except UserError as exc:
                    raise UserError(
                        f"{exc} (judging {judged}: an expectation without a device judges "
                        'each, on its own steps; name the one it is for, device = "...")'
                    ) from None
                out.append(Expect(i, check, name, judged))
        else:
            out.append(
                Expect(i, _expect(Context(r, duration, _of(steps, device)), t, path), name, device)
            )
    n = len(r.array(raw, ("expect",))) if raw is not None else 0
    seen: set[int] = set()
    for s in steps:
        if isinstance(s.action, Send) and s.action.ack_within is not None and s.number not in seen:
            seen.add(s.number)
            n += 1
            ack = AckExpect(s.action.ack_within, s.action.command, s.number)
            out.append(Expect(n, ack, device=s.device))
        elif isinstance(s.action, WaitLog):
            n += 1
            out.append(dataclasses.replace(waited_for(s, n, duration), device=s.device))
    return tuple(out)


def parse(text: str, path: Path) -> Scenario:
    r, data = read_toml(text, path.name, SECTIONS, "scenario", "name and duration at least")
    sc = r.table(data["scenario"], ("scenario",), SCENARIO_KEYS)
    for key in ("name", "duration"):
        if key not in sc:
            raise r.fail(("scenario",), f'missing "{key}"')
    name = r.string(sc["name"], ("scenario", "name"))
    duration = r.duration(sc["duration"], ("scenario", "duration"))
    if duration <= 0:
        raise r.fail(("scenario", "duration"), "must be longer than 0s")
    if duration > DURATION_MAX:
        raise r.fail(
            ("scenario", "duration"),
            f"{sc['duration']} is longer than a scenario may last (31d); "
            "`harness monitor` logs without an end",
        )
    seed = r.integer(sc.get("seed", 0), ("scenario", "seed"), 0, 2**63 - 1)
    description = r.string(sc.get("description", ""), ("scenario", "description"))
    link = _link(r, data.get("link", {}), ("link",), LinkFaults())
    raw_devices = data.get("device", {})
    if isinstance(raw_devices, list):  # [[device]]: several (or one, named)
        devices = _devices(r, raw_devices, link)
        device = devices[0].spec
        if len(devices) == 1:  # the scenario is its one device's: its own link
            link = devices[0].link
    else:  # [device] (or none): the one device, `dut`
        device = _spec(r, r.table(raw_devices, ("device",), DEVICE_KEYS), ("device",))
        devices = (Device(DEFAULT_DEVICE, device, link),)
    names = tuple(d.name for d in devices)
    supply = _supply(r, data.get("supply"), duration)
    steps = _steps(r, data.get("step"), {d.name: d.link for d in devices}, duration)
    expects = _expects(r, data.get("expect"), duration, steps, names)
    parity = _parity(r, sc.get("parity", {}), expects)
    needs = []
    if len(supply.points) > 1:
        needs.append("supply")
    if any(isinstance(s.action, Reset) for s in steps):
        needs.append("reset")
    if any(d.spec.shared_rail for d in devices):
        needs.append("brownout")
    return Scenario(
        path=path,
        name=name,
        description=description,
        duration=duration,
        seed=seed,
        link=link,
        supply=supply,
        device=device,
        steps=steps,
        expects=expects,
        needs=tuple(needs),
        parity=parity,
        devices=devices,
    )


def _spec(r: Reader, dev: dict[str, Any], path: Path_) -> DeviceSpec:
    return DeviceSpec(
        shunt=r.number(dev.get("shunt", 0.1), (*path, "shunt"), 0.001, 100.0, " ohm"),
        noise_v=r.number(dev.get("noise_v", 0.002), (*path, "noise_v"), 0.0, 1.0, " V"),
        noise_a=r.number(dev.get("noise_a", 0.0005), (*path, "noise_a"), 0.0, 1.0, " A"),
        shared_rail=r.boolean(dev.get("shared_rail", False), (*path, "shared_rail")),
        brownout=r.number(dev.get("brownout", 2.7), (*path, "brownout"), 0.0, 32.0, " V"),
    )


def _devices(r: Reader, raw: list[Any], link: LinkFaults) -> tuple[Device, ...]:
    """[[device]] entries: each names itself, and may give its target, its port, its link's
    own faults (on top of [link]) and its mock's setup."""
    out: list[Device] = []
    for i, entry in enumerate(raw, 1):
        path: Path_ = ("device", i)
        t = r.table(entry, path, DEVICE_ENTRY_KEYS)
        if "name" not in t:
            raise r.fail(path, 'missing "name" (what --serial NAME=PATH and the log call it)')
        name = r.string(t["name"], (*path, "name"))
        if not NAME_PATTERN.fullmatch(name):
            raise r.fail(
                (*path, "name"),
                f"{show(name)}: up to 32 letters, digits, _ . - (starting with a letter or digit)",
            )
        if name in (d.name for d in out):
            raise r.fail((*path, "name"), f'another [[device]] is called "{name}" already')
        target = r.string(t["target"], (*path, "target"), TARGETS) if "target" in t else None
        serial = r.string(t["serial"], (*path, "serial")) if "serial" in t else None
        if serial is not None and target not in (None, "board"):
            raise r.fail((*path, "serial"), f"only a board has a port (this is the {target})")
        own = _link(r, t["link"], (*path, "link"), link) if "link" in t else link
        spec = _spec(r, {k: v for k, v in t.items() if k in DEVICE_KEYS}, path)
        out.append(Device(name, spec, own, target, serial))
    if not out:
        raise r.fail(("device",), "needs at least one [[device]] entry")
    return tuple(out)


def _parity(r: Reader, raw: Any, expects: tuple[Expect, ...]) -> dict[str, str]:
    """[scenario] parity: expectation label -> why the mock and the sim may judge it apart."""
    labels = [e.label for e in expects]
    table = r.table(raw, ("scenario", "parity"), raw if isinstance(raw, dict) else ())
    out = {}
    for label, why in table.items():
        if label not in labels:
            raise r.fail(
                ("scenario", "parity", label),
                f"no expectation has this label{suggest(label, labels)}; the labels, as the "
                f"verdict table shows them: {', '.join(labels) or '(none)'}",
            )
        out[label] = r.string(why, ("scenario", "parity", label))
        if not out[label].strip():
            raise r.fail(("scenario", "parity", label), "say why the mock and the sim differ")
    return out


def load(path: Path | str) -> Scenario:
    """Read and check the file. A UTF-8 byte order mark (as some Windows editors write) is
    skipped; any other encoding is refused in one line."""
    path = Path(path)
    text = read_text(path, "scenario file", " (harness list shows the shipped ones)")
    return parse(text, path)
