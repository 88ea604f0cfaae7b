"""Scenario files as test items: `pytest scenarios/` collects each `*.toml` that has a
`[scenario]` table (so pyproject.toml or a bench file beside them is not collected) as one
item, named after the scenario, that runs it in a fresh trio loop (virtual time with
`--powerhil-fast`). A file that fails to load is one collection error with its one-line
message; a run that fails shows the table lines of what did not hold."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.errors import UserError
from harness.pytest_plugin.options import options_of, problem_line
from harness.pytest_plugin.properties import failed_lines, properties

if TYPE_CHECKING:
    from harness.scenario.model import Scenario

SCENARIO_TABLE = re.compile(r"^\s*\[\s*scenario\s*\]", re.MULTILINE)
"""A scenario's mandatory table, found in the text: a file that is not valid TOML but meant
as a scenario is still collected, and reported."""


def is_scenario_file(path: Path) -> bool:
    if path.suffix != ".toml":
        return False
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError:
        return True  # unreadable: loading it says why
    return SCENARIO_TABLE.search(text) is not None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        from harness.scenario.load import load

        try:
            scenario = load(self.path)
        except UserError as exc:
            raise self.CollectError(str(exc)) from None
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.scenario = scenario

    def runtest(self) -> None:
        from harness.runner.run import run

        options = options_of(self.config)
        try:
            run_options = options.run_options(self.scenario)
            targets, extensions = options.compose(self.scenario, run_options)
            result = run(self.scenario, run_options, extensions, targets)
        except (UserError, sqlite3.DatabaseError, BaseExceptionGroup) as exc:
            if (error := problem_line(exc, options)) is None:
                raise
        else:
            error = None
        if error is not None:  # outside the handler: the report is the line, nothing chained
            pytest.fail(error, pytrace=False)
        self.user_properties.extend(properties(result.record))
        if result.signal is not None:  # Ctrl-C or SIGTERM stopped the run: and the session
            raise KeyboardInterrupt
        if result.exit_code != 0:
            pytest.fail(failed_lines(result.record), pytrace=False)

    @property
    def obj(self) -> object:
        """What runs the item. pytest-trio's `trio_mode` reads every item's `obj` to mark the
        async ones; a scenario runs its own trio loop, so this one is not async."""
        return self.runtest

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.name}"
