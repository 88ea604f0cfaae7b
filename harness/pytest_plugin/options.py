"""The plugin's options: each a command-line flag with an ini key of the same name beside it
(`--powerhil-fast` / `powerhil_fast = true`), the flag winning. Checked once, when pytest
configures itself: a bad combination is one line and pytest's usage-error exit (4) before
anything is collected."""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.errors import UserError, found_in
from harness.targets import TARGETS

if TYPE_CHECKING:
    from harness.runner.context import Extension, RunOptions
    from harness.runner.supplied import SupplyChoice
    from harness.scenario.model import Scenario
    from harness.targets import Target


@dataclass(frozen=True, slots=True)
class PowerhilOptions:
    """What the session's scenario items and fixtures run on."""

    target: str = "mock"
    serials: tuple[str, ...] = ()
    """The boards' ports as given: PATH for a scenario of one device, NAME=PATH for each of
    several (a board is named, never found by its USB id in a test session)."""
    supplies: tuple[str, ...] = ()
    """The bench supplies on the boards' rails as given: DRIVER:RESOURCE, as `harness run
    --supply` takes it, or NAME=DRIVER:RESOURCE for each of several devices."""
    fast: bool = False
    """Virtual time (trio's MockClock)."""
    db: Path | None = None
    """The SQLite log every run is recorded in; None: not recorded."""
    seed: int | None = None
    """Overrides each scenario's seed."""

    def on_boards(self, scenario: Scenario | None) -> bool:
        """Whether a device of `scenario` (None: of one, on the session's target) runs on a
        board: only then do the session's ports and supplies apply to it (a scenario whose
        [[device]] entries all name the mock or the sim takes none of them)."""
        if scenario is None:
            return self.target == "board"
        return any((d.target or self.target) == "board" for d in scenario.devices)

    def run_options(self, scenario: Scenario | None = None) -> RunOptions:
        """The engine's options for a run of `scenario` (None: of one device), each port given
        to the device it names; a plain port for a scenario of several is one line."""
        from harness.runner.context import RunOptions
        from harness.scenario.device_flags import split_named

        serial: str | None = None
        serials: dict[str, str] = {}
        if self.on_boards(scenario):
            names = None if scenario is None else scenario.names
            serial, serials = split_named(self.serials, names, "--powerhil-serial", "PATH")
        return RunOptions(
            target=self.target, serial=serial, serials=serials, seed=self.seed, fast=self.fast
        )

    def compose(
        self, scenario: Scenario, options: RunOptions
    ) -> tuple[dict[str, Target], tuple[Extension, ...]]:
        """Each device's target by name and the extensions of one run, as `harness run`
        composes them (no viewer)."""
        from harness.cli import compose, supply_choices

        supplies: dict[str, SupplyChoice] = {}
        if self.on_boards(scenario):
            supplies = supply_choices(
                scenario, self.target, self.supplies, None, "--powerhil-supply"
            )
        targets, extensions = compose(scenario, options, self.db, supply=supplies)
        for name, target in targets.items():  # as the engine asks, with the plugin's flag
            if options.fast and "virtual_time" not in target.capabilities:
                who = f"{name}'s " if len(targets) > 1 else "the "
                raise UserError(
                    f"--powerhil-fast runs in virtual time, which {who}{target.name} target "
                    "cannot; add --no-powerhil-fast"
                )
        return targets, extensions


OPTIONS_KEY = pytest.StashKey[PowerhilOptions]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("powerhil", "powerhil: scenario files as tests, a device fixture")
    group.addoption(
        "--powerhil-target",
        choices=TARGETS,
        help="what runs the device (default: the ini's powerhil_target, else mock)",
    )
    group.addoption(
        "--powerhil-serial",
        action="append",
        metavar="[NAME=]PATH",
        help="with --powerhil-target board: the board's port; NAME=PATH, once for each "
        "device, for a scenario of several",
    )
    group.addoption(
        "--powerhil-supply",
        action="append",
        metavar="[NAME=]DRIVER:RESOURCE",
        help="with --powerhil-target board: the bench supply to drive along each profile "
        "(scpi:TCPIP::HOST::5025::SOCKET, korad:/dev/ttyUSB0, manual); NAME=DRIVER:RESOURCE, "
        "once for each device, for a scenario of several",
    )
    group.addoption(
        "--powerhil-fast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="virtual time: a scenario's minutes in a second (not on a board); "
        "--no-powerhil-fast turns the ini's powerhil_fast = true off",
    )
    group.addoption(
        "--powerhil-db", metavar="PATH", help="log every run to this SQLite file (default: none)"
    )
    group.addoption(
        "--powerhil-seed", metavar="N", help="fault and noise seed (default: each scenario's)"
    )
    parser.addini("powerhil_target", "what runs the device: mock, sim or board", default="mock")
    parser.addini("powerhil_serial", "the board's port ([NAME=]PATH, one a line)", type="linelist")
    parser.addini(
        "powerhil_supply",
        "the bench supply on the board's rail ([NAME=]DRIVER:RESOURCE, one a line)",
        type="linelist",
    )
    parser.addini("powerhil_fast", "virtual time (the mock)", type="bool", default=False)
    parser.addini("powerhil_db", "the SQLite log, relative to the ini file", default="")
    parser.addini("powerhil_seed", "fault and noise seed", default="")


def read_options(config: pytest.Config) -> PowerhilOptions:
    """The session's options from the command line over the ini file, or a UsageError."""

    def value(name: str) -> str | None:
        given = config.getoption(f"--powerhil-{name}")
        if given is None:
            given = config.getini(f"powerhil_{name}") or None
        return given

    def values(name: str) -> tuple[str, ...]:
        given = config.getoption(f"--powerhil-{name}")
        return tuple(given if given is not None else config.getini(f"powerhil_{name}"))

    target = value("target") or "mock"
    if target not in TARGETS:
        raise pytest.UsageError(
            f"powerhil_target = {target}: unknown target; choose one of {', '.join(TARGETS)}"
        )
    from harness.scenario.device_flags import split_named

    serials, supplies = values("serial"), values("supply")
    if target == "board" and not serials:
        raise pytest.UsageError(
            "--powerhil-target board needs --powerhil-serial PATH (the board's port, e.g. "
            "/dev/ttyACM0; NAME=PATH for each of several devices): a test session names the "
            "board it tests"
        )
    if serials and target != "board":
        raise pytest.UsageError(
            f"--powerhil-serial {serials[0]}: only a board has a port; add --powerhil-target board"
        )
    try:
        split_named(serials, None, "--powerhil-serial", "PATH")
        plain, named = split_named(supplies, None, "--powerhil-supply", "DRIVER:RESOURCE")
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None
    if supplies:
        from harness.runner.supplied import refuse_rail_driver
        from harness.supplies import parse_supply

        if target != "board":
            raise pytest.UsageError(str(refuse_rail_driver(target, "--powerhil-supply")))
        try:
            for name, supply in ([(None, plain)] if plain else []) + list(named.items()):
                parse_supply(supply, "--powerhil-supply" + (f" {name}=" if name else ""))
        except UserError as exc:
            raise pytest.UsageError(str(exc)) from None
    fast_given = config.getoption("--powerhil-fast")
    fast = bool(config.getini("powerhil_fast") if fast_given is None else fast_given)
    if fast and target == "board":  # the engine asks each target (virtual_time); a board never
        raise pytest.UsageError(
            f"{'--powerhil-fast' if fast_given else 'powerhil_fast = true (the ini)'}: "
            "a board runs in real time, not virtual; add --no-powerhil-fast"
        )
    seed_text = value("seed")
    try:
        seed = None if seed_text is None else int(seed_text)
    except ValueError:
        raise pytest.UsageError(
            f"--powerhil-seed {seed_text}: expected a whole number, e.g. 7"
        ) from None
    db_text = config.getoption("--powerhil-db")
    db = Path(db_text) if db_text else None
    if db is None and (ini_db := config.getini("powerhil_db")):
        db = (config.inipath.parent if config.inipath else config.rootpath) / ini_db
    return PowerhilOptions(
        target=target,
        serials=serials,
        supplies=supplies,
        fast=fast,
        db=db,
        seed=seed,
    )


def problem_line(exc: BaseException, options: PowerhilOptions) -> str | None:
    """The one line of an error a user can cause in `exc` or in the exception groups around it:
    a UserError's, or the harness's line for a damaged `--powerhil-db` log; None: neither."""
    from harness.cli import damaged_message

    if (error := found_in(exc, UserError)) is not None:
        return str(error)
    if (damage := found_in(exc, sqlite3.DatabaseError)) is not None:
        return damaged_message(options.db, damage, "--powerhil-db")
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[OPTIONS_KEY] = read_options(config)


def options_of(config: pytest.Config) -> PowerhilOptions:
    return config.stash[OPTIONS_KEY]
