"""The Python fuzz target's checks (tests/fuzz/host_target.py) on its seed corpus and on every
input kept in tests/fuzz/regressions/host/, without atheris: what the fuzzer starts from passes,
and what it once found stays fixed. `make fuzz-smoke` replays the C++ target's kept inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import seeds
from tests.fuzz.host_target import check_host

REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions" / "host"


def test_every_seed_passes_the_host_checks() -> None:
    inputs = [data for target, data in seeds.inputs() if target == "host"]
    assert len(inputs) > 50
    for data in inputs:
        check_host(data)


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_kept_input_passes_the_host_checks(path: Path) -> None:
    check_host(path.read_bytes())


def test_the_seed_corpus_is_written_once(tmp_path: Path) -> None:
    made = seeds.write(tmp_path)
    assert made == len(list((tmp_path / "host").iterdir())) + len(
        list((tmp_path / "device").iterdir())
    )
    assert seeds.write(tmp_path) == 0
