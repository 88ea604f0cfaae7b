"""The `harness` command."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from harness.errors import UserError, found_in
from harness.store.writer import Retention
from harness.targets import TARGETS

if TYPE_CHECKING:
    from harness.runner.context import Extension, RunOptions
    from harness.runner.supplied import SupplyChoice
    from harness.scenario.model import Scenario
    from harness.targets import Target

DEFAULT_DB = Path("data/harness.db")
DEFAULT_BIND = "127.0.0.1:8000"
MONITOR_VOLTS = 5.0
"""The rail a monitor without a supply expects (the profile of every scenario without
[[supply]]); with `--supply` the volts must be given (`--volts`)."""
MONITOR_AMPS = 0.25
"""The current limit `harness monitor --supply --volts V` sets unless told otherwise."""
RETENTION_MIN = 3600.0
RETENTION_MIN_TEXT = "1h"
"""The shortest retention accepted: a typo ("0s", "1s") would otherwise delete the log."""
SCENARIO_DIRS = (Path("scenarios"), Path(__file__).resolve().parent.parent / "scenarios")


def resolve_scenario(name: str) -> Path:
    """A path as given, or a shipped scenario by name ("brownout" -> scenarios/brownout.toml)."""
    path = Path(name)
    if path.exists() or (path.suffix == ".toml" and path.parent != Path(".")):
        return path
    for folder in SCENARIO_DIRS:
        for candidate in (folder / name, folder / f"{name}.toml"):
            if candidate.is_file():
                return candidate
    return path


def shipped_scenarios() -> list[Path]:
    for folder in SCENARIO_DIRS:
        if folder.is_dir():
            return sorted(folder.glob("*.toml"))
    return []


def cmd_run(args: argparse.Namespace) -> int:
    from harness.scenario.load import load

    scenario = load(resolve_scenario(args.file))
    for flag, path in (("--json", args.json), ("--junit", args.junit), ("--html", args.html)):
        if path is not None:
            _check_writable(flag, path, REPORT_SUFFIXES[flag])
    # the limits are checked before anything opens
    supplies = supply_choices(scenario, args.target, args.supply, args.bench)
    options = _run_options(
        args,
        scenario.names,
        seed=args.seed,
        json=args.json,
        junit=args.junit,
        fast=args.fast,
        strict=args.strict,
    )
    return _compose_and_run(args, scenario, options, supplies, _html_report(args.html))


def _html_report(path: Path | None) -> list[Extension]:
    """The extension writing `--html`'s report (with uPlot read now: a missing one is one line
    before the run starts); none without --html, which then never loads jinja2."""
    if path is None:
        return []
    from harness.report.extension import html_report
    from harness.report.render import load_uplot
    from harness.viewer.assets import VENDOR

    return [html_report(path, load_uplot(VENDOR))]


def supply_choice(
    scenario: Scenario,
    target: str,
    supply: str | None,
    bench: Path | None,
    flag: str = "--supply",
) -> SupplyChoice | None:
    """The bench supply `--supply` (named `flag` in an error) or `--bench` names, with the
    limits it keeps and the scenario's profile checked against them; None without either."""
    if supply is None and bench is None:
        return None
    from harness.runner.supplied import choose_limits, refuse_rail_driver
    from harness.supplies import load_bench, parse_supply

    if target != "board":
        raise refuse_rail_driver(target, flag if supply is not None else f"--bench {bench}")
    if bench is not None:
        loaded = load_bench(bench)
        return choose_limits(scenario, loaded.supply, loaded.limits, str(bench))
    assert supply is not None
    return choose_limits(scenario, parse_supply(supply, flag), None, None)


def supply_choices(
    scenario: Scenario,
    target: str,
    supplies: Sequence[str] | None,
    bench: Path | None,
    flag: str = "--supply",
) -> dict[str, SupplyChoice]:
    """Each device's bench supply by name: `--supply NAME=DRIVER:RESOURCE` (a plain one, or
    `--bench`, for a scenario's only device), each checked against the profile."""
    from harness.scenario.device_flags import split_named

    plain, named = split_named(supplies, scenario.names, flag, "DRIVER:RESOURCE")
    if bench is not None and len(scenario.devices) > 1:
        raise UserError(
            f"--bench {bench}: names one supply; a scenario of several devices gives each its "
            f"own with {flag} NAME=DRIVER:RESOURCE"
        )
    _refuse_shared_supply(named, flag)
    out: dict[str, SupplyChoice] = {}
    for d in scenario.devices:
        value = named.get(d.name, plain if len(scenario.devices) == 1 else None)
        if value is None and bench is None:
            continue
        where = flag
        if d.name in named:  # its lines show the value as given: "--supply left=korad:..."
            where = f"{flag} {d.name}="
            if (d.target or target) != "board":
                from harness.runner.supplied import refuse_rail_driver

                raise refuse_rail_driver(d.target or target, f"{where}{value}")
        choice = supply_choice(scenario, d.target or target, value, bench, where)
        if choice is not None:
            out[d.name] = choice
    return out


def _refuse_shared_supply(named: dict[str, str], flag: str) -> None:
    """No instrument is two devices' supply (two followers would drive one rail), however
    its resource is spelled: VISA names ignore case, and a serial port is one port whether
    the korad driver or a VISA ASRL resource opens it. A manual supply is a person's hands:
    any number of devices may have one."""
    from harness.supplies import parse_supply

    seen: dict[str, str] = {}
    for name, value in named.items():
        spec = parse_supply(value, f"{flag} {name}=")
        if spec.driver == "manual":
            continue
        key = spec.resource.strip().casefold()
        if key.startswith("asrl") and key.endswith("::instr"):
            key = key[len("asrl") : -len("::instr")]
        if key in seen:
            raise UserError(
                f"{flag}: {seen[key]} and {name} both name {spec.resource} (each device has its "
                "own supply)"
            )
        seen[key] = name


REPORT_SUFFIXES = {"--json": ".json", "--junit": ".xml", "--html": ".html"}
"""The file each report flag writes, by its usual suffix: the file a folder's refusal suggests."""


def _check_writable(flag: str, path: Path, suffix: str) -> None:
    """A report the run would write at its end, refused before it starts if it cannot be."""
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; name a file, e.g. {path / f'report{suffix}'}")
    folder = path.parent if str(path.parent) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folders the report needs are made when it is written
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{flag} {path}: cannot write in {folder}")


def _run_options(args: argparse.Namespace, names: Sequence[str] | None, **more: Any) -> RunOptions:
    """The engine's options that run and monitor share (their _device_args), plus `more`;
    `names`: the scenario's devices, which `--serial NAME=PATH` may name."""
    from harness.runner.context import RunOptions
    from harness.scenario.device_flags import split_named

    serial, serials = split_named(args.serial, names, "--serial", "PATH")
    return RunOptions(
        target=args.target, serial=serial, serials=serials, status=sys.stdout.isatty(), **more
    )


def _compose_and_run(
    args: argparse.Namespace,
    scenario: Scenario,
    options: RunOptions,
    supplies: dict[str, SupplyChoice] | None = None,
    reports: list[Extension] | None = None,
) -> int:
    """The composition root of a run: its target (fed by the bench `supply`, if one is
    named) and the extensions around it (the viewer, then the store), each with its own
    settings from the command line."""
    from harness.runner.run import run

    _one_malloc_arena()
    extensions: list[Extension] = []
    if not args.no_view and options.fast:  # not served: its web stack is not even imported
        from harness.viewer.options import not_served

        extensions.append(not_served(args.bind))
    elif not args.no_view:  # first: a port in use stops the run before the store records it
        from harness.viewer.server import viewer

        extensions.append(viewer(args.bind, args.db))
    retention = _retention(args) if args.db is not None else Retention()
    targets, logged = compose(
        scenario, options, args.db, retention, hello_timeout=args.hello_timeout, supply=supplies
    )
    return run(scenario, options, (*extensions, *logged, *(reports or [])), targets).exit_code


M_ARENA_MAX = -8
"""glibc's mallopt parameter: how many malloc arenas the process may have."""


def _one_malloc_arena() -> None:
    """A run (a monitor for days) in one malloc arena: glibc gives each thread that allocates
    an arena of its own, and the run's worker threads (the store's writes, the viewer's reads)
    only make short blocking calls, so theirs would hold memory for the run's life that the
    main thread's arena serves as well. Elsewhere than glibc: nothing to do."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError, TypeError):  # no C library to ask, or not glibc's:
        return  # its allocator's defaults stand


def compose(
    scenario: Scenario,
    options: RunOptions,
    db: Path | None,
    retention: Retention = Retention(),
    *,
    hello_timeout: float | None = None,
    supply: SupplyChoice | Mapping[str, SupplyChoice] | None = None,
) -> tuple[dict[str, Target], tuple[Extension, ...]]:
    """What `harness run` and the pytest plugin compose alike: each device's target by name,
    the one its [[device]] entry or `options` names (fed by its bench supply, if one is named:
    `supply` by device, or the only device's), and, when `db` names a log, the store's
    extension. The sim keeps its EEPROM (its boot counter) beside the log, so boots count on
    across runs as a board's do."""
    from harness.runner.run import device_seed
    from harness.targets import make_target

    extensions: list[Extension] = []
    if db is not None:
        from harness.store.recorder import recorder

        extensions.append(recorder(db, retention))
    supplies = supply if isinstance(supply, Mapping) or supply is None else None
    targets: dict[str, Target] = {}
    for i, device in enumerate(scenario.devices):
        view = scenario.for_device(device.name)
        eeprom = None
        if db is not None:
            own = "" if i == 0 else f"-{device.name}"
            eeprom = db.with_name(f"{db.stem}{own}-sim.eeprom")
        target = make_target(
            device.target or options.target,
            view,
            device_seed(options.seed_for(scenario), i),
            options.serial_for(device),
            eeprom,
            hello_timeout=hello_timeout,
        )
        choice = supply if supplies is None else supplies.get(device.name)
        if choice is not None:
            from harness.runner.supplied import SuppliedTarget

            target = SuppliedTarget(target, view, choice)
        targets[device.name] = target
    return targets, tuple(extensions)


def _open_for_writing(path: Path) -> TextIO:
    """A file the user named for output, or one line saying why it cannot be written."""
    try:
        return open(path, "w", newline="")
    except OSError as exc:
        raise UserError(f"{path}: cannot write it: {exc.strerror}") from None


def _retention(args: argparse.Namespace) -> Retention:
    from harness.scenario.units import parse_duration

    values = {}
    for flag, text in (
        ("--retention", args.retention),
        ("--rollup-retention", args.rollup_retention),
    ):
        try:
            values[flag] = parse_duration(text)
        except ValueError as exc:
            raise UserError(f"{flag} {text}: {exc}") from None
        if values[flag] < RETENTION_MIN:
            raise UserError(
                f"{flag} {text}: at least {RETENTION_MIN_TEXT} (it deletes older data of every "
                f"run in the log, not only this one's)"
            )
    return Retention(values["--retention"], values["--rollup-retention"])


def cmd_monitor(args: argparse.Namespace) -> int:
    from harness.link.fields import VOLTS
    from harness.runner.monitor import monitor_scenario
    from harness.scenario.device_flags import split_named

    if args.supply and args.volts is None:  # a placeholder must not hold a rail for days
        raise UserError(
            "--supply: a monitor holds the rail at the volts you give it: add --volts V "
            f"(and --current-limit A, default {MONITOR_AMPS:g})"
        )
    if args.volts is None:
        args.volts = MONITOR_VOLTS  # what the monitor reports as expected, set on nothing
    if args.volts > VOLTS.hi:
        raise UserError(
            f"--volts {args.volts:g}: above the bus voltage a reading can hold "
            f"({VOLTS.hi:g} V at most)"
        )
    _, named = split_named(args.serial, None, "--serial", "PATH")
    scenario = monitor_scenario(tuple(named), args.volts, args.current_limit)
    supplies = supply_choices(scenario, args.target, args.supply, None)
    return _compose_and_run(args, scenario, _run_options(args, scenario.names), supplies)


def _when(flag: str, text: str, now: float) -> float:
    """Unix seconds for "2h" (that long ago) or an ISO time ("2026-11-22T08:00", local)."""
    from datetime import datetime

    from harness.scenario.units import parse_duration

    with contextlib.suppress(ValueError):
        return now - parse_duration(text)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UserError(
            f'{flag} {text}: expected a duration ago ("2h") or a local time ("2026-11-22T08:00")'
        ) from None


def cmd_export(args: argparse.Namespace) -> int:
    import time

    from harness.store.db import open_for_reading
    from harness.store.export import export_daily, export_run, export_span
    from harness.store.queries import unknown_device

    if args.until and args.since is None:
        raise UserError("--until goes with --since (a run's samples are all of them: --run ID)")
    if args.device is not None and args.daily:
        raise UserError("--device goes with --run or --since (--daily backs up every device)")
    conn = open_for_reading(args.db)
    if args.daily:
        try:
            written = export_daily(conn, args.daily)
        except OSError as exc:
            raise UserError(f"{args.daily}: cannot write the daily files: {exc.strerror}") from None
        for path, count in written:
            print(f"{path}: {count} samples", file=sys.stderr)
        return 0
    if (
        args.run is not None
        and conn.execute("SELECT 1 FROM runs WHERE id = ?", (args.run,)).fetchone() is None
    ):
        raise UserError(f"--run {args.run}: no such run in {args.db} (harness view lists them)")
    if args.device is not None:
        problem = unknown_device(conn, args.device, args.run, str(args.db))
        if problem is not None:
            raise UserError(f"--device {args.device}: {problem}")
    out = _open_for_writing(args.csv) if args.csv else sys.stdout
    try:
        if args.run is not None:
            count = export_run(conn, args.run, out, args.device)
        else:
            now = time.time()
            t_from = _when("--since", args.since, now)
            t_to = _when("--until", args.until, now) if args.until else now
            if t_to < t_from:
                raise UserError(
                    f"--since {args.since} --until {args.until}: the span ends before it "
                    "starts (--since is the earlier time)"
                )
            count = export_span(conn, t_from, t_to, out, args.device)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{count} samples", file=sys.stderr)
    return 0


def cmd_db_info(args: argparse.Namespace) -> int:
    from harness.store.db import info, open_for_reading
    from harness.store.export import iso

    facts = info(open_for_reading(args.db), args.db)
    for key, value in facts.items():
        if key.startswith(("oldest", "newest")) and value is not None:
            value = iso(value)
        if key == "bytes":
            key, value = "size", _size(value)
        print(f"{key:15} {value}")
    print(
        "retention       set by each run/monitor: --retention (raw samples, events, 10 s "
        "rollups; default 48h), --rollup-retention (1 min rollups; default 30d)"
    )
    return 0


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cmd_view(args: argparse.Namespace) -> int:
    from harness.viewer.server import view

    return view(args.db, args.bind)


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import run_all

    out = _open_for_writing(args.json) if args.json else None  # a bad path fails first
    report = run_all(quick=args.quick, progress=lambda line: print(line, file=sys.stderr))
    print(report.table())
    if out is not None:
        with out:
            out.write(report.json())
    return 0 if report.met else 1


def cmd_check(args: argparse.Namespace) -> int:
    from harness.scenario.load import load

    for name in args.files:
        sc = load(resolve_scenario(name))
        print(
            f"{sc.file}: ok — {sc.name}, {sc.duration:g} s, {_plural(len(sc.steps), 'step')}, "
            f"{_plural(len(sc.expects), 'expectation')}"
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.scenario.load import load

    paths = shipped_scenarios()
    if not paths:
        print("no shipped scenarios found (looked in ./scenarios)")
        return 0
    width = max(len(p.stem) for p in paths)
    for path in paths:
        sc = load(path)
        print(f"{path.stem:<{width}}  {sc.duration:>6g} s  {sc.description or sc.name}")
    return 0


def cmd_mock(args: argparse.Namespace) -> int:
    from harness.targets.mock.serve import serve_mock

    return serve_mock(args.scenario and resolve_scenario(args.scenario), args.seed)


def cmd_virtual_bench(args: argparse.Namespace) -> int:
    from harness.virtualbench.serve import serve_virtual_bench

    return serve_virtual_bench(args.load_ohms, args.korad, args.shared)


def cmd_frame(args: argparse.Namespace) -> int:
    import json

    from harness.link.frame import FrameError, wrap

    text = args.json.strip()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UserError(f"frame: not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise UserError('frame: expected a JSON object, e.g. \'{"cmd":"ping","seq":1}\'')
    body = text.encode("ascii", "replace")
    try:
        sys.stdout.write(wrap(body).decode("ascii"))
    except FrameError as exc:
        raise UserError(f"frame: {exc}") from None
    return 0


def _device_args(p: argparse.ArgumentParser, default_target: str) -> None:
    """What runs the device, where the log goes, and the viewer: for run and monitor."""
    p.add_argument(
        "--target",
        choices=TARGETS,
        default=default_target,
        help=f"what runs the device (default: {default_target})",
    )
    p.add_argument(
        "--serial",
        action="append",
        metavar="[NAME=]PATH",
        help="the board's port (default: find an Arduino by USB id); NAME=PATH, once for each "
        "device, for several",
    )
    from harness.targets.board import HELLO_TIMEOUT

    p.add_argument(
        "--hello-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="board: how long it has to say hello after the port opens and after a reset "
        f"(default: {HELLO_TIMEOUT:g}; an Uno's bootloader takes about 1.6 s)",
    )
    _db_arg(p)
    p.add_argument("--no-view", action="store_true", help="do not serve the live viewer")
    _bind_arg(p)


def _positive(what: str, example: str) -> Any:
    """An argparse type: a positive finite number of `what`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value > 0 or math.isinf(value):
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a positive number of {what}, e.g. {example}"
            )
        return value

    return parse


_seconds = _positive("seconds", "5")
_ohms = _positive("ohms", "20")


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite log (default: {DEFAULT_DB})"
    )


def _bind_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        metavar="HOST:PORT",
        help=f"viewer address (default: {DEFAULT_BIND}; port 0: any free one; "
        "0.0.0.0:PORT serves other machines too)",
    )


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--retention",
        default="48h",
        metavar="DURATION",
        help=f"keep raw samples and events this long, e.g. 48h, 90m, 2d (default: 48h; at "
        f"least {RETENTION_MIN_TEXT})",
    )
    p.add_argument(
        "--rollup-retention",
        default="30d",
        metavar="DURATION",
        help="keep 1-minute rollups this long (default: 30d)",
    )


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error a user can cause (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="harness",
        description="Hardware-in-the-loop harness for an Arduino + INA219 power monitor.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run a scenario against a target")
    r.add_argument("file", help="scenario file, or the name of a shipped one (brownout)")
    _device_args(r, default_target="mock")
    r.add_argument("--seed", type=int, help="fault and noise seed (default: the scenario's)")
    r.add_argument("--json", type=Path, metavar="PATH", help="write the run record as JSON")
    r.add_argument(
        "--junit", type=Path, metavar="PATH", help="write JUnit XML, one testcase per expectation"
    )
    r.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="write a self-contained HTML report: verdict, expectations, chart (docs/report.md)",
    )
    r.add_argument(
        "--fast",
        action="store_true",
        help="virtual time: on the mock an hour runs in seconds, on the sim as fast as simavr can",
    )
    feed = r.add_mutually_exclusive_group()
    feed.add_argument(
        "--supply",
        action="append",
        metavar="[NAME=]DRIVER:RESOURCE",
        help="drive this bench supply along the profile (board only): "
        "scpi:TCPIP::HOST::5025::SOCKET, korad:/dev/ttyUSB0, manual; limits: the profile's own; "
        "NAME=DRIVER:RESOURCE, once for each device, for several",
    )
    feed.add_argument(
        "--bench",
        type=Path,
        metavar="FILE",
        help="a bench file naming the supply, its channel and its safety limits (docs/bench.md)",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        help="a marginal expectation fails the run (exit code 1), as a failed one does",
    )
    _store_args(r)
    r.set_defaults(func=cmd_run)

    mon = sub.add_parser("monitor", help="log the device continuously, no scenario (Ctrl-C stops)")
    _device_args(mon, default_target="board")
    mon.add_argument(
        "--supply",
        action="append",
        metavar="[NAME=]DRIVER:RESOURCE",
        help="hold this bench supply at --volts, --current-limit, and log its readbacks (board "
        "only; its output goes off when the monitor stops); NAME=DRIVER:RESOURCE, once for "
        "each device (named by --serial NAME=PATH), for several",
    )
    mon.add_argument(
        "--volts",
        type=_positive("volts", "3.3"),
        help="with --supply (required there): the volts the supply holds the rail at",
    )
    mon.add_argument(
        "--current-limit",
        type=_positive("amps", "0.5"),
        default=MONITOR_AMPS,
        help=f"with --supply: its current limit in amps (default: {MONITOR_AMPS:g})",
    )
    _store_args(mon)
    mon.set_defaults(func=cmd_monitor)

    v = sub.add_parser(
        "view", help="serve the viewer over the log: history and past runs, no device"
    )
    _db_arg(v)
    _bind_arg(v)
    v.set_defaults(func=cmd_view)

    ex = sub.add_parser("export", help="write logged samples as CSV")
    _db_arg(ex)
    which = ex.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=int, metavar="ID", help="one run's samples")
    which.add_argument(
        "--since", metavar="WHEN", help='samples since "2h" ago or a local time "2026-11-22T08:00"'
    )
    which.add_argument("--daily", type=Path, metavar="DIR", help="one CSV per day into DIR")
    ex.add_argument("--until", metavar="WHEN", help="with --since: up to this (default: now)")
    ex.add_argument("--csv", type=Path, metavar="PATH", help="file to write (default: stdout)")
    ex.add_argument(
        "--device", metavar="NAME", help="only this device's samples (default: every device)"
    )
    ex.set_defaults(func=cmd_export)

    db = sub.add_parser("db", help="the log database")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    dbi = dbsub.add_parser("info", help="size, row counts, oldest and newest, retention")
    _db_arg(dbi)
    dbi.set_defaults(func=cmd_db_info)

    c = sub.add_parser("check", help="validate scenario files without running them")
    c.add_argument(
        "files", nargs="+", metavar="FILE", help="scenario files, or names of shipped ones"
    )
    c.set_defaults(func=cmd_check)

    ls = sub.add_parser("list", help="show the shipped scenarios")
    ls.set_defaults(func=cmd_list)

    m = sub.add_parser("mock", help="run the mock device on a pseudo-terminal and print its path")
    m.add_argument(
        "--scenario", help="follow this scenario's supply profile (default: 5 V, 0.25 A)"
    )
    m.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    m.set_defaults(func=cmd_mock)

    b = sub.add_parser(
        "bench", help="measure the harness's goals on this machine (exit 1 if a goal is missed)"
    )
    b.add_argument("--quick", action="store_true", help="smaller sizes: under a minute")
    b.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    b.set_defaults(func=cmd_bench)

    vb = sub.add_parser(
        "virtual-bench",
        help="the firmware in simavr as a board on a pty, fed by an emulated SCPI supply "
        "(prints both; Ctrl-C stops it)",
    )
    from harness.virtualbench import LOAD_OHMS

    vb.add_argument(
        "--load-ohms",
        type=_ohms,
        default=LOAD_OHMS,
        metavar="OHMS",
        help=f"the resistive load on the rail (default: {LOAD_OHMS:g}, so 5 V draws "
        f"{5 / LOAD_OHMS * 1000:g} mA)",
    )
    vb.add_argument(
        "--korad", action="store_true", help="also serve the same supply as a Korad on a pty"
    )
    vb.add_argument(
        "--shared",
        action="store_true",
        help="the board is powered from the rail (held in reset below 2.7 V)",
    )
    vb.set_defaults(func=cmd_virtual_bench)

    f = sub.add_parser(
        "frame",
        help="print a JSON body as a protocol frame with its CRC (to paste into a terminal)",
    )
    f.add_argument("json", help='e.g. \'{"cmd":"ping","seq":1}\'')
    f.set_defaults(func=cmd_frame)
    return p


VALUE_OPTIONS = ("--since", "--until")
"""Options whose value may start with "-" (a mistyped "-5h"): taken as the value, so the
mistake is explained, not reported as a missing argument."""


def _join_values(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in VALUE_OPTIONS and arg.startswith("-") and not arg.startswith("--"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    try:
        args = p.parse_args(_join_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as done:  # --help, or a usage error already printed in one line
        return done.code if isinstance(done.code, int) else 2
    if args.command is None:
        p.print_help()
        return 0
    try:
        return int(args.func(args))
    except UserError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (sqlite3.DatabaseError, BaseExceptionGroup) as exc:
        damage = found_in(exc, sqlite3.DatabaseError)
        if damage is None:
            raise
        print(damaged_message(getattr(args, "db", None), damage), file=sys.stderr)
        return 2


def damaged_message(db: Path | None, exc: sqlite3.DatabaseError, option: str = "--db") -> str:
    """A log SQLite cannot read: nothing is written to it, and the user is told how to get at
    what is still readable (the pytest plugin names its own `option`)."""
    where = db or "the log"
    return (
        f"{where}: damaged database ({exc}); nothing was written to it. Recover what is "
        f"readable with `sqlite3 {where} .recover | sqlite3 recovered.db`, or log elsewhere "
        f"with {option}"
    )


if __name__ == "__main__":
    sys.exit(main())
