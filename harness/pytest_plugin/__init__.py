"""The pytest plugin (entry point `pytest11`: powerhil; docs/pytest.md): scenario files as test
items (`items.py`), their records as test properties (`properties.py`), the session's options
(`options.py`), and the fixtures for tests written in Python under pytest-trio (`fixtures.py`;
the live device session they wrap: `device.py`). It composes runs as `harness run` does
(`harness.cli.compose`), without the viewer."""

from harness.pytest_plugin.fixtures import (
    device,
    device_scenario,
    devices,
    powerhil_options,
    powerhil_session,
    pytest_collection_modifyitems,
    pytest_runtest_setup,
    run_scenario,
)
from harness.pytest_plugin.items import pytest_collect_file
from harness.pytest_plugin.options import pytest_addoption, pytest_configure

__all__ = [
    "device",
    "device_scenario",
    "devices",
    "powerhil_options",
    "powerhil_session",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_setup",
    "run_scenario",
]
