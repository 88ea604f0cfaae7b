"""The README's test command on a fresh machine: `make test` installs the Debian packages it
needs when it runs as root, and otherwise stops in one line naming them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path("scripts/debian-deps").resolve()


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def _run(tmp_path: Path, uid: int) -> subprocess.CompletedProcess[str]:
    """The script on a machine where no package is installed yet, as user `uid`."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    _stub(stubs, "dpkg-query", "exit 1")  # nothing is installed
    _stub(stubs, "id", f"echo {uid}")
    _stub(stubs, "npm", "exit 0")
    _stub(stubs, "apt-get", f'echo "$@" >> {tmp_path / "apt.log"}')
    env = {**os.environ, "PATH": f"{stubs}:/usr/bin:/bin"}
    return subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_as_a_user_it_stops_in_one_line_naming_the_packages(tmp_path: Path) -> None:
    done = _run(tmp_path, uid=1000)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("make test needs these Debian packages: make g++ sqlite3 ")
    for package in ("gcc-avr", "simavr", "doctest-dev", "chromium"):
        assert package in done.stderr
    assert not (tmp_path / "apt.log").exists()


def test_as_root_it_installs_what_is_missing(tmp_path: Path) -> None:
    done = _run(tmp_path, uid=0)
    assert done.returncode == 0, done.stderr
    update, install = (tmp_path / "apt.log").read_text().splitlines()
    assert update == "update -qq"
    assert install.startswith("install -y -qq --no-install-recommends make g++ sqlite3 ")
    assert "arduino-mk" in install and "nlohmann-json3-dev" in install


def test_ci_runs_only_the_readme_command() -> None:
    lines = [x for x in Path(".ci/run").read_text().splitlines() if x and not x.startswith("#")]
    assert lines[-1] == "make test"
    assert "make test" in Path("README.md").read_text()
