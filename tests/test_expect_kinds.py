"""Expectation kinds: the registry holds each kind as one unit, and one new module adds a kind."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import trio

import harness.scenario.expect as expect
from harness.errors import UserError
from harness.link import Sample
from harness.runner.context import RunOptions
from harness.runner.run import run_scenario
from harness.scenario.expect import PASS, PENDING, Evaluator, RunFacts, entry_keys, evaluator, kinds
from harness.scenario.load import parse

SHIPPED = (
    "alert",
    "log",
    "measure",
    "time_below",
    "time_above",
    "outliers",
    "acked_within",
    "link",
    "resets",
    "recovered_within",
    "agrees_with_supply",
)

HEAD = """\
[scenario]
name = "t"
duration = "20s"

[[step]]
name = "cut"
at = "2s"
outage = "3s"

[[expect]]
"""

# (kind, an entry using its key and companion keys, the label it gets): a kind's entries
# together use every companion key it takes
ENTRIES = [
    ("alert", 'alert = "uv"\nwithin = ["5s", "7s"]\nabsent = true', "no uv alert (5s..7s)"),
    (
        "measure",
        'measure = "v"\nstat = "min"\nover = ["1s", "2s"]\nbelow = 4.5\nabove = "1 V"\n'
        'marginal = "50 mV"',
        "min v over 1s..2s < 4.5 V and > 1 V (marginal within 50 mV)",
    ),
    (
        "measure",
        'measure = "a"\nstat = "rms"\nbetween = ["200 mA", "0.3"]',
        "rms a over whole run in 200 mA..300 mA",
    ),
    ("measure", 'measure = "energy"\nbelow = "4 mWh"', "energy over 0s..20s < 4 mWh"),
    ("measure", 'measure = "charge"\nabove = "0.5 mAh"', "charge over 0s..20s > 500 µAh"),
    (
        "measure",
        'measure = "charge"\nat_most = "1 mAh"\nat_least = "0.5 mAh"',
        "charge over 0s..20s in 500 µAh..1 mAh",
    ),
    (
        "time_below",
        'time_below = "4.5 V"\nover = ["1s", "9s"]\nat_most = "2s"\nat_least = "0.5s"\n'
        'marginal = "200ms"',
        "time below 4.5 V over 1s..9s in 0.5 s..2 s (marginal within 0.2 s)",
    ),
    (
        "time_above",
        'time_above = "300 mA"\nover = ["1s", "9s"]\nat_most = "1s"\nat_least = 0\n'
        'marginal = "100ms"',
        "time above 300 mA over 1s..9s in 0 s..1 s (marginal within 0.1 s)",
    ),
    (
        "outliers",
        'outliers = ["4.75 V", "5.25 V"]\nover = ["1s", "9s"]\nat_most = 3\nat_least = 1',
        "samples outside 4.75 V..5.25 V over 1s..9s in 1..3",
    ),
    (
        "alert",
        'alert = "uv"\nfrom = "step cut"\nto = "end - 1s"',
        "uv alert within step cut..end - 1s",
    ),
    (
        "measure",
        'measure = "w"\nstat = "peak"\nfrom = "alert uv"\nto = "alert uv + 2s"\nbelow = "2 W"',
        "peak w over alert uv..alert uv + 2s < 2 W",
    ),
    (
        "time_below",
        'time_below = "4.5 V"\nfrom = "reset"\nto = "reset + 2s"\nat_most = "1s"',
        "time below 4.5 V over reset..reset + 2s <= 1 s",
    ),
    (
        "time_above",
        'time_above = "1 W"\nfrom = "log \'ready\'"\nto = "end"\nat_least = "1s"',
        "time above 1 W over log 'ready'..end >= 1 s",
    ),
    (
        "outliers",
        'outliers = ["4 V", "6 V"]\nfrom = "step cut"\nto = "step cut + 3s"\nat_most = 0',
        "samples outside 4 V..6 V over step cut..step cut + 3s <= 0",
    ),
    (
        "log",
        'log = "calibration (\\\\d+)"\nwithin = ["1s", "9s"]\nbetween = [4000, 5000]\nmarginal = 10',
        "log line /calibration (\\d+)/ within 1s..9s, capture in 4000..5000 (marginal within 10)",
    ),
    (
        "log",
        'log = "no answer"\nfrom = "step cut"\nto = "end"\nabsent = true',
        "no log line /no answer/ (step cut..end)",
    ),
    (
        "log",
        'log = "v=(.*)"\nbelow = "5.2 V"\nabove = "4.8 V"',
        "log line /v=(.*)/ within whole run, capture < 5.2 V and > 4.8 V",
    ),
    (
        "log",
        'log = "calibration (\\\\d+)"\nvalue = 4096',
        "log line /calibration (\\d+)/ within whole run, capture = 4096",
    ),
    ("acked_within", 'acked_within = "500ms"\ncommand = "ping"', "ping acknowledged within 500ms"),
    ("link", "link = { lost = 0, gaps = 2 }", "link: lost <= 0, gaps <= 2"),
    ("resets", "resets = 1", "device resets seen = 1"),
    ("recovered_within", 'recovered_within = "4s"\nafter = "cut"', "recovered within 4s after cut"),
    (
        "agrees_with_supply",
        'agrees_with_supply = "v"\ntolerance = 0.05\nover = ["1s", "19s"]',
        "v agrees with the supply's readback within 50 mV over 1s..19s",
    ),
]


def test_the_registry_holds_the_shipped_kinds_in_order() -> None:
    assert tuple(k.key for k in kinds()) == SHIPPED
    assert entry_keys() == (
        "name",
        *SHIPPED,
        "within",
        "from",
        "to",
        "absent",
        "value",
        "below",
        "above",
        "between",
        "marginal",
        "stat",
        "over",
        "at_most",
        "at_least",
        "command",
        "after",
        "tolerance",
    )
    with pytest.raises(UserError) as err:
        parse(HEAD + 'alert = "uv"\nresets = 1\n', Path("t.toml"))
    assert str(err.value) == (
        "t.toml:10: expect[1]: an expectation is exactly one of: alert, log, measure, time_below, "
        "time_above, outliers, acked_within, link, resets, recovered_within, agrees_with_supply "
        "(this one: alert and resets)"
    )


@pytest.mark.parametrize(("key", "entry", "label"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_each_kind_reads_its_keys_and_labels_itself(key: str, entry: str, label: str) -> None:
    (kind,) = [k for k in kinds() if k.key == key]
    used = {
        line.split("=")[0].strip() for k, e, _ in ENTRIES if k == key for line in e.splitlines()
    }
    assert used == {key, *kind.takes}
    (e,) = parse(HEAD + entry + "\n", Path("t.toml")).expects
    assert type(e.check) is kind.check
    assert e.label == label
    assert parse(HEAD + entry + '\nname = "mine"\n', Path("t.toml")).expects[0].label == "mine"
    ev = evaluator(e)
    assert isinstance(ev, Evaluator) and ev.expect is e and ev.outcome.state == PENDING


@pytest.mark.parametrize(("key", "entry", "label"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_each_kind_refuses_the_keys_of_another(key: str, entry: str, label: str) -> None:
    (kind,) = [k for k in kinds() if k.key == key]
    foreign, value = ("after", '"cut"') if key == "acked_within" else ("command", '"ping"')
    with pytest.raises(UserError) as err:
        parse(HEAD + f"{entry}\n{foreign} = {value}\n", Path("t.toml"))
    takes = ", ".join(kind.takes) or "nothing else"
    assert str(err.value).endswith(
        f"expect[1].{foreign}: does not go with {key} (it takes: {takes})"
    )


SAMPLE_COUNT = '''\
"""`sample_count = 3`: at least this many samples were delivered (overlapping `over`, if given)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.link import Sample
from harness.scenario.expect.base import (
    Context,
    Evaluator,
    Kind,
    RunFacts,
    Window,
    overlaps,
    register,
    window_text,
)
from harness.scenario.model import Expect
from harness.scenario.reader import Path_


@dataclass(frozen=True, slots=True)
class SampleCountExpect:
    at_least: int
    window: Window | None

    def describe(self) -> str:
        return f"at least {self.at_least} samples over {window_text(self.window)}"


def parse(cx: Context, t: dict[str, Any], path: Path_) -> SampleCountExpect:
    r = cx.reader
    at_least = r.integer(t["sample_count"], (*path, "sample_count"), 1, 10**9)
    window = r.window(t["over"], (*path, "over"), cx.duration) if "over" in t else None
    return SampleCountExpect(at_least, window)


class SampleCountEvaluator(Evaluator):
    def __init__(self, expect: Expect, check: SampleCountExpect) -> None:
        super().__init__(expect)
        self.check = check
        self.count = 0

    def on_sample(self, s: Sample, start: float, end: float) -> None:
        if overlaps(start, end, self.check.window):
            self.count += 1

    def finish(self, facts: RunFacts) -> None:
        ok = self.count >= self.check.at_least
        self._resolve(ok, self.count, f"{self.count} delivered")


register(
    Kind(
        key="sample_count",
        order=70,
        takes=("over",),
        check=SampleCountExpect,
        parse=parse,
        evaluator=SampleCountEvaluator,
    )
)
'''

MODULE = f"{expect.__name__}.sample_count"


@contextmanager
def sample_count_module(folder: Path) -> Iterator[ModuleType]:
    """The package with one more module, sample_count.py, found the way shipped kinds are."""
    (folder / "sample_count.py").write_text(SAMPLE_COUNT)
    shipped = expect.__path__
    expect.__path__ = [*shipped, str(folder)]
    try:
        importlib.invalidate_caches()
        expect.discover()
        yield sys.modules[MODULE]
    finally:
        expect.__path__ = shipped
        if MODULE in sys.modules:
            expect.unregister("sample_count")
            del sys.modules[MODULE]
            delattr(expect, "sample_count")


def sample(seq: int) -> Sample:
    return Sample(seq, 1, seq * 1000, 1000, 5.0, 0.25, 1.25, 5.0, 5.0, 0.25, 4, "ok")


def test_a_new_kind_is_one_module(tmp_path: Path) -> None:
    with sample_count_module(tmp_path) as module:
        assert kinds()[-1].key == "sample_count" and "over" in entry_keys()
        text = HEAD + 'sample_count = 3\nover = ["0s", "5s"]\n'
        (e,) = parse(text, tmp_path / "t.toml").expects
        assert isinstance(e.check, module.SampleCountExpect)
        assert e.label == "at least 3 samples over 0s..5s"

        ev = evaluator(e)
        assert isinstance(ev, module.SampleCountEvaluator)
        for seq, start in ((1, 0.0), (2, 1.0), (3, 9.0)):  # the third is outside the window
            ev.on_sample(sample(seq), start, start + 1.0)
        ev.finish(RunFacts(totals={}, resets=0, recovery={}))
        assert ev.as_dict() == {
            "number": 1,
            "label": "at least 3 samples over 0s..5s",
            "state": "fail",
            "measured": 2,
            "detail": "2 delivered",
            "limit": "",
            "unit": "",
            "margin": None,
        }

        with pytest.raises(UserError) as err:
            parse(HEAD + 'sample_count = 3\nstat = "min"\n', tmp_path / "t.toml")
        assert str(err.value) == (
            "t.toml:12: expect[1].stat: does not go with sample_count (it takes: over)"
        )
        with pytest.raises(UserError) as err:
            parse(HEAD + "sample_count = 0\n", tmp_path / "t.toml")
        assert str(err.value) == "t.toml:11: expect[1].sample_count: 0 is outside 1..1000000000"
    assert tuple(k.key for k in kinds()) == SHIPPED and MODULE not in sys.modules


async def test_a_new_kind_runs_on_the_mock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with sample_count_module(tmp_path):
        text = '[scenario]\nname = "count"\nduration = "5s"\n[[expect]]\nsample_count = 3\n'
        result = await run_scenario(
            parse(text, tmp_path / "count.toml"), RunOptions(fast=True, out=io.StringIO())
        )
    (outcome,) = result.record.expectations
    assert outcome.label == "at least 3 samples over whole run"
    assert outcome.state == PASS and isinstance(outcome.measured, int) and outcome.measured >= 3
    assert result.exit_code == 0
