"""The fixtures for tests written in Python, under pytest-trio: `run_scenario` runs a scenario
(a file or one built in code) and returns its record; `device` is a live session on the
session's target (harness.pytest_plugin.device), running `device_scenario` (override it to
give the device another link or rail, or to run several devices: `device` is then the first,
and `devices` has each by name). A test that uses any of them is a trio test whatever the
project's `trio_mode`: the plugin marks it, and under `--powerhil-fast` runs it on an
autojumping MockClock unless the test asks for a clock of its own."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.errors import UserError
from harness.pytest_plugin.device import Device, open_devices
from harness.pytest_plugin.options import PowerhilOptions, options_of, problem_line
from harness.pytest_plugin.properties import properties
from harness.runner.record import RunRecord
from harness.scenario.model import Scenario
from harness.targets import virtual_clock

FIXTURES = ("run_scenario", "device", "devices")
"""The plugin's fixtures that need a trio test."""
NOT_ASYNC = pytest.StashKey[str]()
"""A test's line when it uses FIXTURES but is not async."""


class ScenarioRunner:
    """`await run_scenario(scenario)`: the run's record, whatever its verdict; its properties
    go to the test's (`--junitxml`). A relative path is looked for beside the test's file
    first; a name alone ("brownout") is a shipped scenario, as `harness run` takes it."""

    def __init__(self, options: PowerhilOptions, beside: Path, node: pytest.Item) -> None:
        self._options = options
        self._beside = beside
        self._node = node

    async def __call__(
        self, scenario: Scenario | Path | str, *, seed: int | None = None
    ) -> RunRecord:
        from harness.runner.run import run_scenario

        try:
            if not isinstance(scenario, Scenario):
                scenario = self._load(scenario)
            run_options = self._options.run_options(scenario)
            if seed is not None:
                run_options.seed = seed
            targets, extensions = self._options.compose(scenario, run_options)
            result = await run_scenario(scenario, run_options, extensions, targets)
        except (UserError, sqlite3.DatabaseError, BaseExceptionGroup) as exc:
            if (problem := problem_line(exc, self._options)) is None:
                raise
        else:
            problem = None
        if problem is not None:  # outside the handler: the report is the line, nothing chained
            pytest.fail(problem, pytrace=False)
        self._node.user_properties.extend(properties(result.record))
        if result.signal is not None:  # Ctrl-C or SIGTERM stopped the run: and the session
            raise KeyboardInterrupt
        return result.record

    def _load(self, name: Path | str) -> Scenario:
        from harness.cli import resolve_scenario
        from harness.scenario.load import load

        beside = self._beside / name  # an absolute path stays itself
        return load(beside if beside.is_file() else resolve_scenario(str(name)))


@pytest.fixture
def powerhil_options(pytestconfig: pytest.Config) -> PowerhilOptions:
    """The session's options (--powerhil-target, ...)."""
    return options_of(pytestconfig)


@pytest.fixture
def run_scenario(
    request: pytest.FixtureRequest, powerhil_options: PowerhilOptions
) -> ScenarioRunner:
    return ScenarioRunner(powerhil_options, request.path.parent, request.node)


@pytest.fixture
def device_scenario() -> Scenario:
    """What the `device` fixture's session runs: `harness monitor`'s scenario (no end, a clean
    link, a steady 5 V, 0.25 A rail)."""
    from harness.runner.monitor import monitor_scenario

    return monitor_scenario()


@pytest.fixture
async def powerhil_session(
    powerhil_options: PowerhilOptions, device_scenario: Scenario
) -> AsyncIterator[dict[str, Device]]:
    """The live session `device` and `devices` share: `device_scenario` on the session's
    targets, a handle on each of its devices by name, ended (drained, its record made) after
    the test."""
    problem = None
    try:
        run_options = powerhil_options.run_options(device_scenario)
        targets, extensions = powerhil_options.compose(device_scenario, run_options)
        async with open_devices(device_scenario, run_options, targets, extensions) as session:
            yield session
    except (UserError, sqlite3.DatabaseError, BaseExceptionGroup) as exc:
        if (problem := problem_line(exc, powerhil_options)) is None:
            raise
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
async def device(powerhil_session: dict[str, Device]) -> Device:
    """A live session on the session's target: the handle on its first device (on its only
    one, but for a `device_scenario` of several)."""
    return next(iter(powerhil_session.values()))


@pytest.fixture
async def devices(powerhil_session: dict[str, Device]) -> dict[str, Device]:
    """The same session's handle on each of its devices by name, in the scenario's order (for
    a `device_scenario` of several; of one, `{"dut": device}`)."""
    return powerhil_session


def trio_runner(fast: bool, target: str) -> Callable[..., Any]:
    """pytest-trio's runner for a test that uses the plugin's fixtures: trio.run on the clock the
    test asked for (`autojump_clock`, say), else, under --powerhil-fast, in the target's virtual
    time (an autojumping MockClock on the mock, the simulator's time on the sim). A test that failed with one error (an assertion, a fixture's one line, a
    ValueError) raises it alone, not in the exception group of the nursery pytest-trio runs the
    test in; a KeyboardInterrupt among them (a run stopped by Ctrl-C) stops the session."""

    def run(fn: Callable[..., Awaitable[Any]], *args: Any, clock: Any = None, **kw: Any) -> Any:
        __tracebackhide__ = True  # a failure's report starts in the test
        if clock is None and fast:
            clock = virtual_clock(target)
        try:
            return trio.run(fn, *args, clock=clock, **kw)
        except BaseExceptionGroup as group:
            leaves = list(_leaves(group))
            if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
                raise KeyboardInterrupt from None
            if len(leaves) == 1:
                raise leaves[0] from None
            raise

    return run


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def ours(item: pytest.Function) -> list[str]:
    """The plugin's fixtures `item` uses: a name of FIXTURES that the test's own conftest
    defines again, or that it parametrizes, is not the plugin's (a project may have its own
    `device`)."""
    defs = item._fixtureinfo.name2fixturedefs
    return [
        name
        for name in FIXTURES
        if name in item.fixturenames
        and (chosen := defs.get(name))
        and getattr(chosen[-1].func, "__module__", None) == __name__
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each async test that uses a fixture of the plugin becomes a trio test, run by
    `trio_runner` (the marker goes first: pytest-trio takes the
    runner of the first trio marker that names one); one that is not async fails in its setup,
    before any fixture is made, with one line (`pytest_runtest_setup`)."""
    users = [item for item in items if isinstance(item, pytest.Function) and ours(item)]
    if not users:
        return
    if not config.pluginmanager.hasplugin("trio"):
        raise pytest.UsageError(
            f"{users[0].nodeid}: powerhil's fixtures run under pytest-trio, which is not "
            "installed (pip install pytest-trio)"
        )
    options = options_of(config)
    run = trio_runner(options.fast, options.target)
    for item in users:
        if inspect.iscoroutinefunction(item.obj):
            item.add_marker(pytest.mark.trio(run=run), append=False)
        else:
            used = " and ".join(ours(item))
            item.stash[NOT_ASYNC] = (
                f"{item.nodeid}: uses powerhil's {used} fixture, which runs under trio; make "
                "the test `async def`"
            )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that is not async but uses the plugin's fixtures fails here, before pytest makes
    any of its fixtures (a trio fixture a sync test began would break the next test's)."""
    if (line := item.stash.get(NOT_ASYNC, None)) is not None:
        pytest.fail(line, pytrace=False)
