"""Every module of the harness imports: a command reaches some of them only when it runs (the
bench's groups, a driver named on the command line), so a name that moved between modules
would otherwise show up as a user's traceback."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import harness

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(harness.__path__, "harness.")
    if m.name != "harness.__main__"  # it runs the command: the tests run `python -m harness`
)


def test_the_package_has_its_layers() -> None:
    assert {"harness.cli", "harness.bench.firmware", "harness.virtualbench.serve"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports(name: str) -> None:
    importlib.import_module(name)
