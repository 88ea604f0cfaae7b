"""Mock/sim parity: every shipped scenario in virtual time on the mock and on the real firmware
in simavr (`--fast` on both), their JSON records' verdicts equal expectation by expectation,
except where the scenario's `[scenario] parity` says why the two differ (docs/scenarios.md).
And the bar of the sim's virtual time: brownout.toml with `--fast` from the command line
passes, with the verdicts of its real-time run.

Slow: the sim runs a scenario at about twice real time on an idle 2-core machine, so the nine
scenarios (370 s of scenario time) take some three to five minutes, the real-time run of
brownout 25 s more."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main, shipped_scenarios
from harness.runner.context import RunOptions
from harness.runner.run import run
from harness.scenario.load import load

pytestmark = pytest.mark.slow


def verdicts(record: Path) -> dict[str, str]:
    """Each expectation's and check's state, by label, as the JSON record has them."""
    data: dict[str, Any] = json.loads(record.read_text())
    assert data["error"] is None, data["error"]
    return {e["label"]: e["state"] for e in data["expectations"] + data["checks"]}


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_mock_and_sim_judge_every_shipped_scenario_alike(path: Path, tmp_path: Path) -> None:
    scenario = load(path)
    judged = {}
    for target in ("mock", "sim"):
        record = tmp_path / f"{target}.json"
        run(scenario, RunOptions(target=target, fast=True, json=record, out=io.StringIO()))
        judged[target] = verdicts(record)
    mock, sim = judged["mock"], judged["sim"]
    assert mock.keys() == sim.keys()
    differ = {k: (mock[k], sim[k]) for k in mock if mock[k] != sim[k]}
    unexplained = {k: v for k, v in differ.items() if k not in scenario.parity}
    assert not unexplained, f"mock vs sim, with no [scenario] parity saying why: {unexplained}"


def test_brownout_on_the_sim_fast_passes_as_in_real_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast, real = tmp_path / "fast.json", tmp_path / "real.json"
    args = ["run", "scenarios/brownout.toml", "--target", "sim", "--no-view"]
    assert main([*args, "--fast", "--json", str(fast)]) == 0
    assert main([*args, "--json", str(real)]) == 0
    assert "(virtual time)" in capsys.readouterr().out
    assert json.loads(fast.read_text())["virtual_time"] is True
    assert verdicts(fast) == verdicts(real)
    assert set(verdicts(fast).values()) == {"pass"}
