"""The self-contained HTML report (docs/report.md): `harness run --html` writes one file that
loads nothing from anywhere, with the verdict, every expectation's measured value, limit and
margin, and a chart chromium draws from it offline; a failing or stopped run writes it too; the
viewer serves the same report of a logged run; the chart's envelope stays bounded."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from markupsafe import escape
from playwright.sync_api import Browser, Page, sync_playwright

from harness.cli import main
from harness.errors import UserError
from harness.report.data import UNLISTED_KINDS, report_data
from harness.report.envelope import BUCKETS, ENVELOPE, Envelope, Trace
from harness.report.extension import Collector, html_report
from harness.report.render import load_uplot, render
from harness.runner.bus import KINDS, RunEvent
from harness.runner.context import Extension, RunContext, RunOptions
from harness.runner.run import run_scenario
from harness.runner.supplied import SuppliedTarget, choose_limits
from harness.scenario.expect.limits import Limits
from harness.scenario.load import load
from harness.scenario.quantities import VOLTAGE
from harness.store.db import create_run, open_for_reading, open_for_writing
from harness.store.recorder import recorder
from harness.supplies import parse_supply
from harness.supplies.emulated import EmulatedOutput, ScpiInstrument
from harness.supplies.emulators import serve_scpi
from harness.targets.board import BoardTarget
from harness.viewer import assets
from harness.viewer.app import create_app
from harness.viewer.runreport import report_html
from tests.scenario_texts import FAILING
from tests.test_run_supplied import board, dip
from tests.test_viewer_browser import CHROMIUM, CHROMIUM_ARGS

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)""", re.I)
"""An attribute that would make the page load (or leave for) something by a URL."""

# Pixels of the plot area that are not the page's white: the chart drew its traces and bands.
INKED = """
() => {
  const canvas = document.querySelector("#chart canvas");
  const over = document.querySelector("#chart .u-over");
  if (!canvas || !over) return 0;
  const scale = canvas.width / canvas.getBoundingClientRect().width;
  const c = canvas.getBoundingClientRect(), o = over.getBoundingClientRect();
  const data = canvas.getContext("2d").getImageData(
    (o.left - c.left) * scale, (o.top - c.top) * scale, o.width * scale, o.height * scale).data;
  let inked = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235)) inked++;
  }
  return inked;
}
"""


def self_contained(text: str) -> None:
    """Nothing the page would load from a network: no attribute with a scheme or `//`, and no
    URL at all (uPlot's banner, its one URL, is replaced by its licence)."""
    assert EXTERNAL.search(text) is None, EXTERNAL.search(text)
    assert "://" not in text and "http" not in text.lower()
    assert "@import" not in text and "url(" not in text


def chart_data(text: str, key: str = "") -> dict[str, Any]:
    """The JSON block of the chart (of a run of several devices: `key` "-left", the left's)."""
    found = re.search(rf'id="chart-data{key}">(.*?)</script>', text, re.S)
    assert found is not None
    return json.loads(found.group(1))


def brownout(tmp_path: Path, *more: str) -> tuple[Path, dict[str, Any]]:
    """The issue's bar: `harness run scenarios/brownout.toml --fast --no-view --html r.html`
    (and --json beside it, to know what the report must say)."""
    report, record = tmp_path / "r.html", tmp_path / "r.json"
    args = ["run", "scenarios/brownout.toml", "--fast", "--no-view", "--html", str(report)]
    assert main([*args, "--json", str(record), *more]) == 0
    return report, json.loads(record.read_text())


def test_brownout_writes_one_self_contained_file_with_every_number(tmp_path: Path) -> None:
    report, record = brownout(tmp_path, "--db", str(tmp_path / "log" / "h.db"))
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == ["r.html", "r.json"]  # and no temporary file left beside it
    text = report.read_text()
    self_contained(text)
    assert '<span id="verdict" class="badge pass">pass</span>' in text
    for e in [*record["expectations"], *record["checks"]]:
        assert f"<td>{escape(e['label'])}</td>" in text
        if e["detail"]:
            assert escape(e["detail"]) in text
    sag = next(e for e in record["expectations"] if e["label"] == "sag depth")
    margin = f"{round((3.2 - sag['measured']) * 1000)} mV"  # inside "< 3.2 V" by this much
    assert f'<td class="num">{margin}</td>' in text
    chart = chart_data(text)
    envelope = chart["envelope"]
    assert sum(envelope["n"]) > 0 and len(envelope["t"]) == record["link"]["delivered"]
    assert min(envelope["v_min"]) == pytest.approx(sag["measured"])
    assert chart["readback"] is None  # the mock has no bench supply


def test_without_a_database_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's report needs no log: here the default one, in a folder of its own."""
    monkeypatch.chdir(tmp_path)
    root = Path(__file__).resolve().parent.parent
    report = tmp_path / "out" / "r.html"
    code = main(
        ["run", str(root / "scenarios/brownout.toml"), "--fast", "--no-view", "--html", str(report)]
    )
    assert code == 0 and report.is_file()
    self_contained(report.read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_offline(browser: Browser, path: Path) -> tuple[Page, list[str], list[str]]:
    """The file opened from disk with every other request refused: the requests it made, and
    the errors the page raised."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort(),
    )
    page.goto(path.as_uri())
    return page, requests, errors


def test_chromium_draws_the_chart_from_the_file_offline(browser: Browser, tmp_path: Path) -> None:
    report, record = brownout(tmp_path, "--db", str(tmp_path / "log" / "h.db"))
    page, requests, errors = open_offline(browser, report)
    page.wait_for_function("Number(document.querySelector('#chart').dataset.drawn || 0) > 0")
    assert requests == [report.as_uri()] and errors == []
    inked = page.evaluate(INKED)
    assert inked > 5000, inked  # three means, three envelopes: far more than an empty grid's
    page.screenshot(path=tmp_path / "report.png", full_page=True)
    shown = page.inner_text("body")
    assert "PASS" in page.inner_text("#verdict")
    for e in record["expectations"]:
        assert e["label"] in shown and e["detail"] in shown
    assert page.inner_text("#expectations tbody tr:nth-child(3)").split("\t")[1:4] == [
        "sag depth",
        next(e["detail"] for e in record["expectations"] if e["label"] == "sag depth"),
        "< 3.2 V (marginal within 100 mV)",
    ]
    legend = page.inner_text("#chart .u-legend")
    assert "V" in legend and "A" in legend and "W" in legend and "supply" not in legend
    delivered = page.inner_text("#link tr:first-child")
    assert delivered.split("\t") == ["delivered", str(record["link"]["delivered"])]
    page.context.close()


def test_a_failing_run_writes_its_report_with_the_verdict_fail(tmp_path: Path) -> None:
    scenario, report = tmp_path / "doomed.toml", tmp_path / "doomed.html"
    scenario.write_text(FAILING)
    db = str(tmp_path / "log" / "h.db")
    assert (
        main(["run", str(scenario), "--fast", "--no-view", "--html", str(report), "--db", db]) == 1
    )
    text = report.read_text()
    assert '<span id="verdict" class="badge fail">fail</span>' in text
    (row,) = re.findall(r'<tr data-state="fail">.*?</tr>', text)
    assert "rail sags below 4 V" in row and "&lt; 4 V" in row
    assert re.search(r'<td class="num">-[\d.]+ m?V</td></tr>$', row), row  # outside: negative


def signal_at(seconds: float) -> Extension:
    """Ctrl-C at scenario second `seconds`."""

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        async def later() -> None:
            await trio.sleep_until(ctx.origin + seconds)
            os.kill(os.getpid(), signal.SIGINT)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            yield
            nursery.cancel_scope.cancel()

    return extension


async def test_a_run_stopped_by_ctrl_c_writes_its_report(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    report = tmp_path / "stopped.html"
    extensions = (html_report(report, load_uplot(assets.VENDOR)), signal_at(4.8))
    options = RunOptions(fast=True, out=io.StringIO())
    result = await run_scenario(load("scenarios/brownout.toml"), options, extensions)
    assert result.exit_code == 130
    text = report.read_text()
    assert 'class="badge interrupted">interrupted</span>' in text
    assert (
        text.count('<tr data-state="skipped">')
        == sum(e.state == "skipped" for e in result.record.expectations)
        > 0
    )


def listed_kinds(text: str) -> list[str]:
    """The kind of each row of the report's events table."""
    found = re.search(r'<table id="events">.*?</table>', text, re.S)
    assert found is not None
    return re.findall(r'<tr><td class="num">[^<]*</td><td>([^<]*)</td>', found.group(0))


def listed_times(text: str) -> list[str]:
    """The time of each row of the report's events table."""
    found = re.search(r'<table id="events">.*?</table>', text, re.S)
    assert found is not None
    return re.findall(r'<tr><td class="num">([^<]*)</td>', found.group(0))


def every_kind() -> list[tuple[str, dict[str, Any]]]:
    """An event of each of the bus's kinds, and a port's unplugging (a fault the relay reports
    of the port, not of a frame)."""
    return [(kind, {"n": i}) for i, kind in enumerate(KINDS)] + [("fault", {"what": "port"})]


RUN_LEVEL = [k for k in KINDS if k not in UNLISTED_KINDS] + ["fault"]
"""What the report lists of `every_kind`, in order: each kind but the per-frame ones and the
readbacks, then the port's fault."""


def test_the_report_lists_every_run_level_event_kind_of_the_bus() -> None:
    """From `harness run --html`'s collector: a `sensor` event (the rail above the INA219's
    absolute maximum) is listed like every other run-level kind, a frame's fault is not."""
    assert set(UNLISTED_KINDS) < set(KINDS)  # a renamed kind is not silently listed
    collector = Collector(10.0)
    for i, (kind, data) in enumerate(every_kind()):
        collector.take(RunEvent(kind, i * 0.1, dict(data, volts=30.0, amps=0.1)))
    record = {
        "scenario": {"name": "over", "file": "over.toml", "description": "", "duration": 10.0},
        "verdict": "pass",
    }
    text = render(collector.data(record), load_uplot(assets.VENDOR))
    assert listed_kinds(text) == RUN_LEVEL and "sensor" in RUN_LEVEL
    assert f"{len(RUN_LEVEL)} events" in text


def test_a_logged_runs_report_lists_every_run_level_event_kind(tmp_path: Path) -> None:
    """From the log: the same kinds, a sim run's `sensor` rows among them."""
    db = tmp_path / "h.db"
    conn = open_for_writing(db)
    run_id = create_run(conn, "run", "over", "sim", 1, 1000.0)
    with conn:
        conn.executemany(
            "INSERT INTO events (run, t, kind, data) VALUES (?, ?, ?, ?)",
            [
                (run_id, 1000.0 + i, kind, json.dumps(data))
                for i, (kind, data) in enumerate(every_kind())
            ],
        )
    text = report_html(open_for_reading(db), run_id, load_uplot(assets.VENDOR))
    conn.close()
    assert text is not None and listed_kinds(text) == RUN_LEVEL


def replaced_by_a_file(folder: Path, seconds: float) -> Extension:
    """At scenario second `seconds`, `folder` (made before the run) becomes a file."""

    @asynccontextmanager
    async def extension(ctx: RunContext) -> AsyncIterator[None]:
        async def later() -> None:
            await trio.sleep_until(ctx.origin + seconds)
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
            folder.write_text("")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            yield
            nursery.cancel_scope.cancel()

    return extension


@pytest.mark.parametrize("lost", ["json", "junit", "html"])
async def test_a_report_unwritable_at_the_end_is_a_line_after_the_verdict_table(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, lost: str
) -> None:
    """A passing run whose report's folder was replaced by a file mid-run: the verdict table,
    then one line naming the report not written (an error: the CLI exits 2), and the other
    reports written all the same."""
    paths = {kind: tmp_path / kind / f"r.{kind}" for kind in ("json", "junit", "html")}
    for path in paths.values():
        path.parent.mkdir()
    out = io.StringIO()
    options = RunOptions(fast=True, out=out, json=paths["json"], junit=paths["junit"])
    extensions = (
        html_report(paths["html"], load_uplot(assets.VENDOR)),
        replaced_by_a_file(paths[lost].parent, 2.0),
    )
    with pytest.raises(UserError) as raised:
        await run_scenario(load("scenarios/brownout.toml"), options, extensions)
    assert str(raised.value) == f"{paths[lost]}: cannot write the report: File exists"
    assert "counted" in out.getvalue()  # the verdict table was printed
    written = sorted(kind for kind, path in paths.items() if path.is_file())
    assert written == sorted(set(paths) - {lost})
    if lost != "json":
        assert json.loads(paths["json"].read_text())["verdict"] == "pass"


def test_a_report_path_that_cannot_be_written_is_one_line_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for path, says in (
        (tmp_path, "is a folder; name a file"),
        (blocker / "r.html", "a-file is a file, not a folder"),
    ):
        assert main(["run", "brownout", "--fast", "--no-view", "--html", str(path)]) == 2
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and err.startswith(f"--html {path}: ") and says in err
        assert "running" not in out  # refused before the run started


def test_a_report_flag_given_a_folder_suggests_a_file_of_its_own_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag, suggested in (("--json", "json"), ("--junit", "xml"), ("--html", "html")):
        assert main(["run", "brownout", "--fast", "--no-view", flag, str(tmp_path)]) == 2
        _, err = capsys.readouterr()
        assert err == (
            f"{flag} {tmp_path}: is a folder; name a file, e.g. {tmp_path}/report.{suggested}\n"
        )


def test_missing_uplot_is_one_line_naming_make_web_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(assets, "VENDOR", tmp_path / "vendor")
    report = tmp_path / "r.html"
    assert main(["run", "brownout", "--fast", "--no-view", "--html", str(report)]) == 2
    out, err = capsys.readouterr()
    assert err == (
        f"{tmp_path / 'vendor' / 'uPlot.iife.min.js'}: missing; the HTML report inlines uPlot "
        "from it (run `make web-assets`)\n"
    )
    assert "running" not in out and not report.exists()


async def test_the_viewer_serves_a_logged_runs_report_as_a_download(tmp_path: Path) -> None:
    db = tmp_path / "log" / "h.db"
    report, record = await trio.to_thread.run_sync(lambda: brownout(tmp_path, "--db", str(db)))
    app = create_app(None, db)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        page = await (await client.get("/runs/1")).get_data(as_text=True)
        assert 'href="/api/runs/1/report.html" download>Download report</a>' in page
        response = await client.get("/api/runs/1/report.html")
        assert response.status_code == 200 and response.mimetype == "text/html"
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="powerhil-run-1.html"'
        )
        text = await response.get_data(as_text=True)
        conn = open_for_writing(db)  # a run this process holds, with no record yet
        running = create_run(conn, "run", "later", "mock", 1, time.time())
        partial = await (await client.get(f"/api/runs/{running}/report.html")).get_data(
            as_text=True
        )
        conn.close()
        missing = await client.get("/api/runs/7/report.html")
        assert missing.status_code == 404 and (await missing.get_json()) == {
            "error": "run 7: no such run"
        }
    self_contained(text)
    assert "from the log, run 1" in text
    assert 'class="badge running">running</span>' in partial
    assert (
        "unknown — the run has no record (running)" in partial and "no expectations" not in partial
    )
    ran = report.read_text()
    for part in ("expectations", "link", "injected", "observed", "commands"):
        table = re.compile(rf'<table id="{part}".*?</table>', re.S)
        assert table.search(text).group(0) == table.search(ran).group(0), part
    chart = chart_data(text)
    assert sum(chart["envelope"]["n"]) == sum(chart_data(ran)["envelope"]["n"])
    assert min(chart["envelope"]["v_min"]) == pytest.approx(
        next(e["measured"] for e in record["expectations"] if e["label"] == "sag depth")
    )


def test_a_killed_runs_report_shows_what_the_log_holds_and_no_more(tmp_path: Path) -> None:
    """The lossy 20 s brownout, killed at 10 s (its rows as the killed process leaves them: no
    verdict, no end, no record, nothing after 10 s): its report has the samples stored, the
    chart and the events, and says the rest is unknown — no "samples lost 0", no "injected
    none", no "no end" scenario, no wall time."""
    db = tmp_path / "log" / "h.db"
    brownout(tmp_path, "--db", str(db))
    with sqlite3.connect(db) as c:
        (origin,) = c.execute("SELECT started FROM runs WHERE id = 1").fetchone()
        for table in ("samples", "events", "rollups"):
            column = "bucket" if table == "rollups" else "t"
            c.execute(f"DELETE FROM {table} WHERE {column} >= ?", (origin + 10,))
        c.execute("UPDATE runs SET verdict = NULL, ended = NULL, record = NULL WHERE id = 1")
        (stored,) = c.execute("SELECT count(*) FROM samples WHERE run = 1").fetchone()
    text = report_html(open_for_reading(db), 1, load_uplot(assets.VENDOR))
    assert text is not None and stored > 0
    self_contained(text)
    assert 'class="badge killed">killed</span>' in text
    assert "unknown — the run has no record (killed)" in text
    assert f'<tr><th>samples stored</th><td class="num">{stored}</td></tr>' in text
    shown = re.sub(r"<(script|style).*?</\1>", "", text, flags=re.S)
    for claim in ("samples lost", ">none<", "no end", "s wall", "no expectations", "no commands"):
        assert claim not in shown, claim
    for table in ("expectations", "link", "injected", "observed", "commands", "device", "log"):
        assert f'<table id="{table}"' not in text, table
    envelope = chart_data(text)["envelope"]
    assert sum(envelope["n"]) > 0 and max(envelope["t"]) < 10
    # the run's start is among its first events: at second 0, with the devices' own (a mock's
    # boot), in no fixed order among them
    times = listed_times(text)
    first = listed_kinds(text).index("run")
    assert times[first] == "0.000" and set(times[: first + 1]) == {"0.000"}


def test_the_envelope_stays_bounded_and_keeps_the_extremes() -> None:
    """An hour of 10 Hz samples into an envelope sized for a minute: the width doubles until
    they fit, the buckets never exceed BUCKETS, and a 0.1 s dip's minimum and the mean of
    every reading survive the folding."""
    env = Envelope(span=60.0)
    total = mean_sum = 0.0
    for i in range(36_000):
        t = (i + 1) / 10
        v = 3.0 if i == 20_000 else 5.0 + (i % 7) * 0.001
        n = 1 + i % 3
        env.add(t, n, (v - 0.01, v, v + 0.01), (0.25, 0.25, 0.26), (v * 0.25,) * 3)
        total += n
        mean_sum += v * n
        assert len(env) <= BUCKETS
    cols = env.columns()
    assert len(cols["t"]) <= BUCKETS and env.width >= 3600 / BUCKETS
    assert env.width / (60.0 / BUCKETS) in [2**k for k in range(10)]  # doubled, never rescaled
    assert min(cols["v_min"]) == pytest.approx(2.99) and max(cols["a_max"]) == 0.26
    assert sum(cols["n"]) == total
    weighted = sum(m * n for m, n in zip(cols["v_avg"], cols["n"], strict=True)) / total
    assert weighted == pytest.approx(mean_sum / total)
    assert cols["t"] == sorted(cols["t"]) and cols["t"][0] == 0.0

    empty = Envelope(span=10.0)
    empty.add(1.0, 0, (5.0,) * 3, (0.1,) * 3, (0.5,) * 3)  # a sample with no reading
    assert empty.columns()["t"] == []

    trace = Trace(span=10.0, buckets=50)  # 0.2 s: two readbacks a bucket
    for i in range(100):
        trace.add(i / 10 + 0.05, 4.0 + (i % 2), 0.2)
    assert len(trace) == 50 and trace.columns()["volts"] == [pytest.approx(4.5)] * 50


def test_a_margin_is_how_far_inside_the_nearest_limit() -> None:
    below = Limits(VOLTAGE, hi=3.2)
    assert below.margin(2.992) == pytest.approx(0.208) and below.margin(3.3) == pytest.approx(-0.1)
    band = Limits(VOLTAGE, lo=4.75, lo_inclusive=True, hi=5.25, hi_inclusive=True)
    assert band.margin(5.2) == pytest.approx(0.05) and band.margin(4.7) == pytest.approx(-0.05)
    assert Limits(VOLTAGE, equal=5.0).margin(5.0) is None


def test_the_report_never_holds_nan_or_a_closing_script_tag(tmp_path: Path) -> None:
    """Whatever a device logs and whatever a measure comes to: a log line with `</script>` in
    it stays text, and a non-finite value is null in the chart's JSON."""
    _, record = brownout(tmp_path, "--db", str(tmp_path / "log" / "h.db"))
    record["device"]["log"] = [{"at": 1.0, "text": "</script><script>alert(1)</script>"}]
    chart: dict[str, list[Any]] = {"t": [0.0, 1.0], "n": [1, 1]}
    chart.update({name: [float("nan"), 1.0] for name in ENVELOPE})
    text = render(report_data(record, chart, None, [], 0, "a test"), load_uplot(assets.VENDOR))
    assert "<script>alert(1)" not in text and "&lt;/script&gt;&lt;script&gt;alert(1)" in text
    data = chart_data(text)
    assert data["envelope"]["v_min"] == [None, 1.0] and "NaN" not in json.dumps(data)
    assert text.count("</script>") == 3  # the JSON block, uPlot, the chart's code


TWO_RAILS = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "two-rails.toml"
"""Two devices, the right one's link lossy (the pytest plugin's example)."""


def two_rails(tmp_path: Path, *more: str) -> tuple[Path, dict[str, Any]]:
    report, record = tmp_path / "two.html", tmp_path / "two.json"
    args = ["run", str(TWO_RAILS), "--fast", "--no-view", "--html", str(report)]
    assert main([*args, "--json", str(record), *more]) == 0
    return report, json.loads(record.read_text())


def table(text: str, name: str) -> str:
    found = re.search(rf'<table id="{name}".*?</table>', text, re.S)
    assert found is not None, name
    return found.group(0)


def test_a_run_of_two_devices_shows_each_with_its_verdict_expectations_link_and_chart(
    tmp_path: Path,
) -> None:
    report, record = two_rails(tmp_path)
    text = report.read_text()
    self_contained(text)
    assert '<span id="verdict" class="badge pass">pass</span>' in text
    assert 'id="chart"' not in text and 'id="expectations"' not in text  # no one-device layout
    durations = set()
    for section in record["devices"]:
        key = f"-{section['name']}"
        assert f'<section class="device" id="section{key}">' in text
        assert f'<span id="verdict{key}" class="badge pass">pass</span>' in text
        expectations = table(text, f"expectations{key}")
        for e in [*section["expectations"], *section["checks"]]:
            assert f"<td>{escape(e['label'])}</td>" in expectations  # its own, unprefixed
        others = [d for d in record["devices"] if d is not section]
        for e in others[0]["expectations"]:
            if e["label"] not in {x["label"] for x in section["expectations"]}:
                assert escape(e["label"]) not in expectations
        delivered = section["link"]["delivered"]
        assert f'<tr><th>delivered</th><td class="num">{delivered}</td></tr>' in table(
            text, f"link{key}"
        )
        chart = chart_data(text, key)
        assert chart["device"] == section["name"]
        assert len(chart["envelope"]["t"]) == delivered and sum(chart["envelope"]["n"]) > 0
        assert 3.9 < min(chart["envelope"]["v_min"]) < 4.1  # its own dip
        durations.add(chart["duration"])
    assert durations == {10.0}  # the shared axis's end
    right = record["devices"][1]
    assert right["injected"]["drop"] > 0
    injected = table(text, "injected-right")
    assert f'<td class="num">{right["injected"]["drop"]}</td></tr>' in injected
    assert '<td colspan="4" class="muted">none</td>' in table(text, "injected-left")
    devices = table(text, "devices")
    assert devices.count('<span class="badge pass">pass</span>') == 2
    events = table(text, "events")
    assert "<th>device</th>" in events and "<td>right</td><td>hello</td>" in events


def test_a_device_that_failed_is_the_one_its_section_says_failed(tmp_path: Path) -> None:
    scenario, report = tmp_path / "sags.toml", tmp_path / "sags.html"
    scenario.write_text(
        TWO_RAILS.read_text()
        + '[[expect]]\ndevice = "right"\nname = "sags below 3 V"\nmeasure = "v"\n'
        'stat = "min"\nbelow = 3.0\n'
    )
    assert main(["run", str(scenario), "--fast", "--no-view", "--html", str(report)]) == 1
    text = report.read_text()
    assert '<span id="verdict" class="badge fail">fail</span>' in text
    assert '<span id="verdict-left" class="badge pass">pass</span>' in text
    assert '<span id="verdict-right" class="badge fail">fail</span>' in text
    (row,) = re.findall(r'<tr data-state="fail">.*?</tr>', text)
    assert "sags below 3 V" in row and row in table(text, "expectations-right")


def test_chromium_draws_each_devices_chart_on_one_time_axis(
    browser: Browser, tmp_path: Path
) -> None:
    report, _ = two_rails(tmp_path)
    page, requests, errors = open_offline(browser, report)
    drawn = "(id) => Number(document.getElementById(id).dataset.drawn || 0) > 0"
    for name in ("left", "right"):
        page.wait_for_function(drawn, arg=f"chart-{name}")
    assert requests == [report.as_uri()] and errors == []

    def axes() -> list[str]:
        return [page.get_attribute(f"#chart-{n}", "data-x") or "" for n in ("left", "right")]

    assert axes() == ["0 10", "0 10"]  # from 0 to the scenario's end, both
    for name in ("left", "right"):
        inked = page.evaluate(INKED.replace("#chart ", f"#chart-{name} "))
        assert inked > 5000, (name, inked)
    over = page.locator("#chart-left .u-over").bounding_box()
    assert over is not None
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.5, y, steps=5)
    page.mouse.up()
    left, right = axes()
    assert left == right and left != "0 10"  # zoomed together
    low, high = map(float, left.split())
    assert 2 < low < high < 5.5
    page.locator("#chart-right .u-over").dblclick()
    assert axes() == ["0 10", "0 10"]  # and zoomed out together
    assert page.inner_text("#verdict-right") == "PASS"
    page.screenshot(path=tmp_path / "two.png", full_page=True)
    page.context.close()


def test_a_logged_run_of_two_devices_has_each_device_s_section_and_chart(
    tmp_path: Path,
) -> None:
    """The viewer's report of it: each device's section has its verdict, its link and its
    own chart, from the log's rows of that device; the events table names the device."""
    db = tmp_path / "log" / "h.db"
    _, record = two_rails(tmp_path, "--db", str(db))
    text = report_html(open_for_reading(db), 1, load_uplot(assets.VENDOR))
    assert text is not None
    self_contained(text)
    assert "every device's samples together" not in text
    conn = sqlite3.connect(db)
    for section in record["devices"]:
        key = f"-{section['name']}"
        assert f'<span id="verdict{key}" class="badge pass">pass</span>' in text
        delivered = section["link"]["delivered"]
        assert f'<td class="num">{delivered}</td>' in table(text, f"link{key}")
        (stored,) = conn.execute(
            "SELECT sum(n) FROM samples WHERE device = ?", (section["name"],)
        ).fetchone()
        assert sum(chart_data(text, key)["envelope"]["n"]) == stored


async def supplied_run(tmp_path: Path, report: Path, db: Path) -> int:
    """dip.toml in real time on the mock device as a board, its rail fed by the SCPI emulator:
    a run with the supply's readback, logged and reported."""
    scenario = dip(tmp_path)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(EmulatedOutput(load=25.0)))
        async with board(scenario) as path:
            resource = f"scpi:TCPIP::127.0.0.1::{port}::SOCKET"
            choice = choose_limits(scenario, parse_supply(resource), None, None)
            result = await run_scenario(
                scenario,
                RunOptions(target="board", out=io.StringIO()),
                (recorder(db), html_report(report, load_uplot(assets.VENDOR))),
                SuppliedTarget(BoardTarget(path), scenario, choice),
            )
        nursery.cancel_scope.cancel()
    return result.exit_code


@pytest.mark.slow
def test_a_real_time_run_on_a_bench_supply_draws_its_readback(
    browser: Browser, tmp_path: Path
) -> None:
    report, db = tmp_path / "dip.html", tmp_path / "log" / "h.db"
    assert trio.run(supplied_run, tmp_path, report, db) == 0
    text = report.read_text()
    self_contained(text)
    readback = chart_data(text)["readback"]
    assert readback is not None and min(readback["volts"]) < 4.3  # the dip, read back
    assert "supply" in text and 'id="supply"' in text
    conn = open_for_reading(db)
    logged = report_html(conn, 1, load_uplot(assets.VENDOR))
    assert logged is not None
    from_log = chart_data(logged)["readback"]
    assert from_log is not None and min(from_log["volts"]) < 4.3
    page, requests, errors = open_offline(browser, report)
    page.wait_for_function("Number(document.querySelector('#chart').dataset.drawn || 0) > 0")
    assert requests == [report.as_uri()] and errors == []
    assert "supply V" in page.inner_text("#chart .u-legend") and page.evaluate(INKED) > 5000
    page.screenshot(path=tmp_path / "dip.png")
    page.context.close()
