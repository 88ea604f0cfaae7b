"""The viewer in a real browser: Debian's chromium driven by Playwright, against `harness run`
and `harness view` as a user starts them. Screenshots are saved in the test's tmp folder."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from harness.bench.live import memory_kb, percentile
from harness.cli import main
from harness.store.db import open_for_writing
from tests.scenario_texts import LEFT_AND_RIGHT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RSS_GOAL_KB = 60 * 1024
V_PANE = "#chart .pane[data-measure=v]"
LIVE = ".live-chart"
"""The live page's chart of its first (here: only) device."""
LIVE_V_PANE = f"{LIVE} .pane[data-measure=v]"

SCENARIO = """\
[scenario]
name = "viewer-browser"
duration = "8s"
seed = 5

[link]
drop = 0.03
corrupt = 0.02

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25
[[supply]]
at = "3s"
volts = 5.0
[[supply]]
at = "3.3s"
volts = 4.0
amps = 0.3
[[supply]]
at = "4.5s"
volts = 4.0
[[supply]]
at = "4.8s"
volts = 5.0
amps = 0.25

[[step]]
at = "0.5s"
send = { cmd = "set_interval", value = 250 }
[[step]]
at = "0.6s"
send = { cmd = "set_threshold", uv = 4.5 }

[[expect]]
alert = "uv"
within = ["2.5s", "6s"]
[[expect]]
measure = "v"
stat = "avg"
over = ["6s", "8s"]
above = 4.9
[[expect]]
link = { lost = 0, duplicated = 0, commands_failed = 0 }
"""

# Stamps each sample message with frame arrival -> this page's WebSocket, in milliseconds.
LATENCY = """
window.__latencies = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      const now = performance.timeOrigin + performance.now();
      const message = JSON.parse(event.data);
      if (message.type === "measurements") {
        for (const item of message.items) window.__latencies.push(now - item.data.arrived * 1000);
      }
    });
  }
};
"""

# Pixels of the V line's blue inside a pane's plot area (its axis labels are blue too): the
# chart has data drawn, not just axes.
BLUE_PIXELS = """
(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  const over = document.querySelector(selector + " .u-over");
  if (!canvas || !over) return 0;
  const scale = canvas.width / canvas.getBoundingClientRect().width;
  const c = canvas.getBoundingClientRect();
  const o = over.getBoundingClientRect();
  const [x, y] = [(o.left - c.left) * scale, (o.top - c.top) * scale];
  const [w, h] = [o.width * scale, o.height * scale];
  if (w < 1 || h < 1) return 0;
  const data = canvas.getContext("2d").getImageData(x, y, w, h).data;
  let blue = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 200 && data[i] < 90 && data[i + 1] > 70 && data[i + 1] < 140 && data[i + 2] > 200) blue++;
  }
  return blue;
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := re.match(r"viewer: (http://\S+)", line):
            return proc, match.group(1)
    proc.wait()
    raise AssertionError(f"harness {' '.join(args)}: no viewer URL (exit {proc.returncode})")


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def text(page: Page, selector: str) -> str:
    return page.text_content(selector) or ""


def test_live_page_during_a_run(browser: Browser, tmp_path: Path) -> None:
    scenario = tmp_path / "browser.toml"
    scenario.write_text(SCENARIO)
    proc, url = start(
        ["run", str(scenario), "--bind", "127.0.0.1:0", "--db", str(tmp_path / "h.db")]
    )
    figures: dict[str, Any] = {}
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = watch_errors(page)
        page.add_init_script(LATENCY)
        page.goto(url)
        # The numbers come, and change.
        page.wait_for_function("document.querySelector('.big.v .num').textContent !== '—'")
        first = text(page, ".sample-info")
        page.wait_for_function(
            f"document.querySelector('.sample-info').textContent !== {json.dumps(first)}",
            timeout=3000,
        )
        assert re.fullmatch(r"\d\.\d{3}", text(page, ".big.v .num"))
        assert re.fullmatch(r"\d\.\d{4}", text(page, ".big.a .num"))
        # The link health comes with the stats, twice a second: it says "up" by the next one.
        page.wait_for_function(
            "document.querySelector('.link-state').textContent === 'up'", timeout=3000
        )
        assert text(page, ".target") == "mock"
        # The chart is drawn, at 10 frames a second, from a bounded buffer.
        page.wait_for_function(f"({BLUE_PIXELS})({LIVE_V_PANE!r}) > 200", timeout=3000)
        # Latency from here on: loading the page and polling its canvas keep its thread busy.
        page.evaluate("window.__latencies = []")
        draws = int(page.get_attribute(".live-chart", "data-draws") or 0)
        time.sleep(1.0)
        figures["fps"] = int(page.get_attribute(".live-chart", "data-draws") or 0) - draws
        assert figures["fps"] >= 10
        assert int(page.get_attribute(".live-chart", "data-points") or 0) <= 60 / 0.25 + 40
        # An expectation resolves while the run goes on.
        page.wait_for_selector("#expectations li[data-state=pass]", timeout=8000)
        assert proc.poll() is None
        figures["memory_kb"] = memory_kb(proc.pid)  # the run, with this page open
        # (Taken before the screenshots, which hold the page's main thread for a while.)
        latencies = sorted(page.evaluate("window.__latencies"))
        page.screenshot(path=tmp_path / "live.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.screenshot(path=tmp_path / "live-phone.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        page.evaluate("window.__latencies = []")  # again, now that the screenshots are taken
        # The end: every expectation passed, the verdict shows, the run exits 0.
        page.wait_for_selector("#verdict:not([hidden])", timeout=15000)
        states = page.eval_on_selector_all(
            "#expectations li", "els => els.map(e => e.dataset.state)"
        )
        assert states == ["pass", "pass", "pass"] and text(page, "#verdict") == "pass"
        assert proc.wait(timeout=10) == 0
        latencies = sorted(latencies + page.evaluate("window.__latencies"))
        assert text(page, "#conn") == "run ended"
        assert "live view closed (run pass)" in text(page, "#feed")
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.screenshot(path=tmp_path / "live-end.png", full_page=True)
        assert errors == []
    finally:
        proc.kill()
        proc.wait()
    p99 = percentile(latencies, 0.99)
    figures["latency_ms"] = {"n": len(latencies), "p50": median(latencies), "p99": p99}
    print(f"\nviewer in chromium: {figures}; screenshots in {tmp_path}")
    assert len(latencies) >= 15 and p99 < 100  # the seed's bound; docs/viewer.md has the figures
    assert figures["memory_kb"]["VmHWM"] <= RSS_GOAL_KB, figures["memory_kb"]


@contextmanager
def viewing(db: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`harness view` over the log at `db` while the test looks at it (killed after, if it
    is still there): the process and its URL."""
    proc, url = start(["view", "--db", str(db), "--bind", "127.0.0.1:0"])
    try:
        yield proc, url
    finally:
        proc.kill()
        proc.wait()


def test_runs_and_history_pages_over_the_log(browser: Browser, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    with viewing(db) as (proc, url):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors = watch_errors(page)
        page.goto(url)  # no live run: the runs page
        page.wait_for_selector("#runs tbody tr[data-run='1']")
        assert "brownout" in text(page, "#runs tbody") and "pass" in text(page, "#runs tbody")
        page.click("#runs tbody a[href='/runs/1']")
        page.wait_for_function(f"({BLUE_PIXELS})({V_PANE!r}) > 200")
        assert text(page, "#verdict") == "pass"
        assert (
            page.eval_on_selector_all("#expectations li", "els => els.map(e => e.dataset.state)")
            == ["pass"] * 7
        )
        limits = page.eval_on_selector_all(
            "#expectations li .limit", "els => els.map(e => e.textContent)"
        )
        assert "limit < 3.2 V (marginal within 100 mV)" in limits
        page.wait_for_selector("#events tbody tr.alert")
        assert page.get_attribute("#csv", "href") == "/api/export.csv?run=1"
        assert not page.is_visible("#device")  # one device: nothing to choose
        # Drag across the chart (its middle pane): finer buckets are fetched for the span.
        before = int(page.get_attribute("#chart", "data-points") or 0)
        box = page.locator("#chart .pane[data-measure=a] .u-over").bounding_box()
        assert box is not None
        y = box["y"] + box["height"] / 2
        with page.expect_response(lambda r: "/api/history" in r.url) as zoomed:
            page.mouse.move(box["x"] + box["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
            page.mouse.up()
        query = zoomed.value.url
        assert "run=1" in query and zoomed.value.ok
        assert page.is_enabled("#back") and before > 0
        page.screenshot(path=tmp_path / "run.png", full_page=True)
        page.goto(url + "history")
        page.wait_for_selector("#info:not(:empty)")
        assert "buckets" in text(page, "#info")
        page.screenshot(path=tmp_path / "history.png", full_page=True)
        assert errors == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


# --- a steady rail: V, A and W each in a readable pane -------------------------------------

STEADY = """\
[scenario]
name = "steady-rail"
duration = "7s"
seed = 3

[[supply]]
at = "0s"
volts = 5.0
amps = 0.25

[[step]]
at = "0.3s"
send = { cmd = "set_interval", value = 250 }

[[expect]]
measure = "v"
stat = "avg"
above = 4.95
"""
MEASURES = ("v", "a", "w")
MIN_SPAN = {"v": 0.5, "a": 0.05, "w": 0.25}
"""The least y range of each pane (V, A, W), whatever the noise on the rail."""
LINE_RGB = {"v": (37, 99, 235), "a": (220, 38, 38), "w": (22, 163, 74)}
CLOCK = re.compile(r"\d\d:\d\d:\d\d(\.\d{1,3})?")
"""24-hour local time, as the page writes it elsewhere (no am/pm, no m/d/y), with tenths or
hundredths when ticks are under a second apart."""

# The chart's panes as uPlot holds them (the page puts its plots on #chart.plots): each y
# range and the values drawn in view, the x range, where the pane and its plot sit (CSS px),
# where the middle of its data is drawn (0 = top of the plot, 1 = bottom), and the room its
# y axis leaves: beside the tick and its gap for the widest tick label, and across the
# rotated unit label's band for the label's font.
PANES = """
(selector) => {
  const chart = document.querySelector(selector);
  const measure = document.createElement("canvas").getContext("2d");
  const out = {};
  for (const [m, u] of Object.entries(chart.plots)) {
    const key = { v: "V", a: "A", w: "W" }[m];
    const x = u.scales.x;
    const values = [];
    for (let s = 1; s < u.data.length; s++) {
      u.data[s].forEach((v, i) => {
        if (v != null && u.data[0][i] >= x.min && u.data[0][i] <= x.max) values.push(v);
      });
    }
    const axis = u.axes[1];
    measure.font = axis.font[0];
    const widest = Math.max(...axis._values.map((v) => measure.measureText(v).width)) / devicePixelRatio;
    const pane = u.root.getBoundingClientRect();
    const plot = u.over.getBoundingClientRect();
    const low = Math.min(...values);
    const high = Math.max(...values);
    out[m] = {
      min: u.scales[key].min, max: u.scales[key].max, low, high, n: values.length,
      x: [x.min, x.max], top: pane.top, bottom: pane.bottom,
      plot: [plot.left, plot.width, plot.height],
      middle: u.valToPos((low + high) / 2, key) / plot.height,
      tick_room: axis._size - axis.ticks.size - axis.gap - widest,
      label_room: axis.labelSize - axis.labelFont[1] / devicePixelRatio,
      label: axis.label, time_ticks: u.axes[0]._values || [],
    };
  }
  return out;
}
"""

# Per pane, the pixels inside its plot area near each measure's line colour: which lines it
# draws.
LINES_IN_PANES = """
([selector, colours]) => {
  const out = {};
  for (const [m, u] of Object.entries(document.querySelector(selector).plots)) {
    const { left, top, width, height } = u.bbox;
    const px = u.ctx.getImageData(left, top, width, height).data;
    const counts = {};
    for (const [c, [r, g, b]] of Object.entries(colours)) {
      let n = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 200 && Math.abs(px[i] - r) < 40 && Math.abs(px[i + 1] - g) < 40 && Math.abs(px[i + 2] - b) < 40) n++;
      }
      counts[c] = n;
    }
    out[m] = counts;
  }
  return out;
}
"""


def panes(page: Page, chart: str = "#chart") -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = page.evaluate(PANES, chart)
    return found


def assert_readable_panes(
    page: Page, volts: float, amps: float, chart: str = "#chart"
) -> dict[str, dict[str, Any]]:
    """The chart draws V, A and W in three panes, top to bottom, on one x range and one
    plot width; each pane's y range is at least its minimum span, holds its line and draws the
    steady rail (volts, amps) near its middle; each y axis has room for its labels."""
    found = panes(page, chart)
    assert list(found) == list(MEASURES)
    v, a, w = (found[m] for m in MEASURES)
    assert v["bottom"] <= a["top"] and a["bottom"] <= w["top"], found  # stacked, not overlaid
    assert v["x"] == a["x"] == w["x"]
    assert v["plot"][:2] == a["plot"][:2] == w["plot"][:2]  # the plots line up
    assert v["plot"][2] == a["plot"][2] == w["plot"][2]  # and are as tall
    expected = {"v": volts, "a": amps, "w": volts * amps}
    for m, pane in found.items():
        assert pane["n"] > 0, (m, pane)
        assert pane["max"] - pane["min"] >= MIN_SPAN[m] - 1e-9, (m, pane)
        assert pane["min"] <= pane["low"] and pane["high"] <= pane["max"], (m, pane)
        assert pane["low"] <= expected[m] * 1.01 and pane["high"] >= expected[m] * 0.99, (m, pane)
        assert 0.2 < pane["middle"] < 0.8, (m, pane)  # noise does not fill the pane
        assert pane["tick_room"] >= 0 and pane["label_room"] >= 0, (m, pane)  # no overlap
    assert [found[m]["label"] for m in MEASURES] == ["voltage (V)", "current (A)", "power (W)"]
    colours = {m: list(rgb) for m, rgb in LINE_RGB.items()}
    lines = page.evaluate(LINES_IN_PANES, [chart, colours])
    for m in MEASURES:
        assert lines[m][m] > 20, lines  # its own line, drawn
        assert all(lines[m][other] == 0 for other in MEASURES if other != m), lines
    ticks = w["time_ticks"]
    assert ticks and all(CLOCK.fullmatch(t) for t in ticks), ticks
    return found


def test_steady_rail_live_in_three_panes(browser: Browser, tmp_path: Path) -> None:
    scenario = tmp_path / "steady.toml"
    scenario.write_text(STEADY)
    proc, url = start(
        ["run", str(scenario), "--bind", "127.0.0.1:0", "--db", str(tmp_path / "h.db")]
    )
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = watch_errors(page)
        page.goto(url)
        # Four seconds of samples at 250 ms: every pane has a line to show.
        page.wait_for_function(
            "+document.querySelector('.live-chart').dataset.points >= 16", timeout=8000
        )
        assert_readable_panes(page, 5.0, 0.25, LIVE)
        # Pointing at the current pane reads all three at that time, and the other panes'
        # cursors follow (one time axis).
        box = page.locator(".live-chart .pane[data-measure=a] .u-over").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.97, box["y"] + box["height"] / 2)
        page.wait_for_function(
            "document.querySelector('.chart-readout').textContent.includes(' A')"
        )
        readout = text(page, ".chart-readout")
        assert re.fullmatch(r"\d\d:\d\d:\d\d5\.\d{3} V0\.2\d{3} A1\.\d{3} W", readout), readout
        lefts = page.evaluate(
            "Object.values(document.querySelector('.live-chart').plots).map(u => u.cursor.left)"
        )
        assert lefts[0] > 0 and lefts[1] == pytest.approx(lefts[0], abs=0.5), lefts
        assert lefts[2] == pytest.approx(lefts[0], abs=0.5), lefts
        page.screenshot(path=tmp_path / "steady-live.png", full_page=True)
        page.mouse.move(0, 0)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.wait_for_function("document.querySelector('.live-chart').plots.v.width < 390")
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert_readable_panes(page, 5.0, 0.25, LIVE)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=tmp_path / "steady-live-phone.png", full_page=True)
        page.wait_for_selector("#verdict:not([hidden])", timeout=15000)
        assert proc.wait(timeout=10) == 0
        # The device's boot hello and its answer to the host's `hello` say the same: listed
        # once. A power event reads as what happened.
        assert page.locator("#feed li.hello").count() == 1
        assert text(page, "#feed li.hello .what") == "firmware 1.0.0 · boot 1 · interval 1000 ms"
        assert text(page, "#feed li.power .what") == "on · boot 1"
        assert errors == []
    finally:
        proc.kill()
        proc.wait()


def test_steady_rail_in_the_log_pages(browser: Browser, tmp_path: Path) -> None:
    scenario = tmp_path / "steady.toml"
    scenario.write_text(STEADY)
    db = tmp_path / "h.db"
    assert main(["run", str(scenario), "--fast", "--no-view", "--db", str(db)]) == 0
    with viewing(db) as (proc, url):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = watch_errors(page)
        # The run's page: the A band (0.250..0.252 A) is a thin band mid-pane, not the pane.
        page.goto(url + "runs/1")
        page.wait_for_function(f"({BLUE_PIXELS})({V_PANE!r}) > 200")
        assert_readable_panes(page, 5.0, 0.25)
        page.wait_for_selector("#events tbody tr.run")
        assert page.locator("#events tbody tr.hello").count() == 1
        assert text(page, "#events tr.power td.details") == "on · boot 1"
        page.screenshot(path=tmp_path / "steady-run.png", full_page=True)
        # On a phone every event's details can be read: nothing is cut off or scrolled away.
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_function("document.querySelector('#chart').plots.v.width < 390")
        cut = page.eval_on_selector_all(
            "#events tbody td",
            """cells => cells.filter(c => c.scrollWidth > c.clientWidth + 1 ||
                 c.getBoundingClientRect().right > document.querySelector('#events').closest('.card').getBoundingClientRect().right)
               .map(c => c.textContent)""",
        )
        assert cut == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=tmp_path / "steady-run-phone.png", full_page=True)
        # History opens on the newest run's span, with a margin, in the page's own time format.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(url + "history")
        page.wait_for_selector("#info:not(:empty)")
        run = page.evaluate("fetch('/api/runs?limit=1').then(r => r.json()).then(b => b.runs[0])")
        shown = panes(page)["v"]["x"]
        length = run["ended"] - run["started"]
        margin = max(2.0, length / 10)
        assert shown == pytest.approx([run["started"] - margin, run["ended"] + margin], abs=0.01)
        assert_readable_panes(page, 5.0, 0.25)
        for field in ("#from", "#to"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.input_value(field))
        page.screenshot(path=tmp_path / "steady-history.png", full_page=True)
        # A span across midnight dates the ticks where the day changes (YYYY-MM-DD).
        midnight = page.evaluate("new Date().setHours(0, 0, 0, 0) / 1000")
        page.goto(url + f"history?from={midnight - 3 * 3600}&to={midnight + 3 * 3600}")
        page.wait_for_selector("#info:not(:empty)")
        ticks = panes(page)["w"]["time_ticks"]
        dated = [t for t in ticks if "\n" in t]
        assert [t.split("\n")[1] for t in dated] == sorted({t.split("\n")[1] for t in dated})
        assert len(dated) == 2 and all(
            re.fullmatch(r"\d\d:\d\d\n\d{4}-\d\d-\d\d", t) for t in dated
        )
        assert all(re.fullmatch(r"\d\d:\d\d", t) for t in ticks if "\n" not in t), ticks
        found = panes(page)
        assert found["v"]["plot"][2] == found["w"]["plot"][2]  # the two-line axis has its room
        assert errors == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


def test_history_without_runs_opens_on_the_last_hour(browser: Browser, tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    open_for_writing(db).close()
    with viewing(db) as (proc, url):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = watch_errors(page)
        page.goto(url + "history")
        page.wait_for_selector("#info:not(:empty)")
        low, high = panes(page)["v"]["x"]
        assert high - low == pytest.approx(3600, abs=0.01)
        assert high == pytest.approx(time.time(), abs=30)
        assert "the last" in text(page, "#opened")
        assert errors == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


# Pixels of the supply's trace colour (charts.js SUPPLY_COLOR, #d97706) in a pane's plot area.
SUPPLY_PIXELS = BLUE_PIXELS.replace(
    "data[i] < 90 && data[i + 1] > 70 && data[i + 1] < 140 && data[i + 2] > 200",
    "data[i] > 190 && data[i + 1] > 90 && data[i + 1] < 140 && data[i + 2] < 40",
)

EMULATOR = """
import trio
from harness.supplies.emulated import EmulatedOutput, ScpiInstrument
from harness.supplies.emulators import serve_scpi

async def main():
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_scpi, ScpiInstrument(EmulatedOutput(load=20.0)))
        print(port, flush=True)

try:
    trio.run(main)
except KeyboardInterrupt:
    pass
"""


def test_live_chart_draws_the_supplys_readback_as_a_second_trace(
    browser: Browser, tmp_path: Path
) -> None:
    scenario = tmp_path / "browser.toml"
    scenario.write_text(SCENARIO)
    emulator = subprocess.Popen([sys.executable, "-c", EMULATOR], stdout=subprocess.PIPE, text=True)
    mock = subprocess.Popen(
        [sys.executable, "-m", "harness", "mock", "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        text=True,
    )
    procs = [emulator, mock]
    try:
        assert emulator.stdout is not None and mock.stdout is not None
        port = int(emulator.stdout.readline())
        pty = mock.stdout.readline().strip()
        proc, url = start(
            [
                *("run", str(scenario), "--target", "board", "--serial", pty),
                *("--supply", f"scpi:TCPIP::127.0.0.1::{port}::SOCKET"),
                *("--bind", "127.0.0.1:0", "--db", str(tmp_path / "h.db")),
            ]
        )
        procs.append(proc)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = watch_errors(page)
        page.goto(url)
        page.wait_for_function(f"({BLUE_PIXELS})({LIVE_V_PANE!r}) > 200", timeout=8000)
        page.wait_for_function(f"({SUPPLY_PIXELS})({LIVE_V_PANE!r}) > 100", timeout=5000)
        a_pane = ".live-chart .pane[data-measure=a]"
        page.wait_for_function(f"({SUPPLY_PIXELS})({a_pane!r}) > 30", timeout=3000)
        assert page.evaluate(f"({SUPPLY_PIXELS})('.live-chart .pane[data-measure=w]')") == 0
        assert int(page.get_attribute(".live-chart", "data-readbacks") or 0) >= 5
        feed = text(page, "#feed")
        assert f"scpi:TCPIP::127.0.0.1::{port}::SOCKET: powerhil,Emulated SCPI supply" in feed
        assert "output on · took" in feed
        page.wait_for_function(
            "document.querySelector('#feed').textContent.includes('4.000 V (supply[3])')",
            timeout=8000,
        )
        page.screenshot(path=tmp_path / "live-supply.png", full_page=True)
        print(f"\nscreenshot: {tmp_path / 'live-supply.png'}")
        assert errors == []
    finally:
        for p in reversed(procs):  # the run first: its supply switches off while it is there
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


TWO_DEVICES = (
    """\
[scenario]
name = "viewer-two"
duration = "6s"
seed = 2

"""
    + LEFT_AND_RIGHT
    + """
[[step]]
at = "0.3s"
send = { cmd = "set_interval", value = 200 }

[[expect]]
device = "left"
measure = "v"
stat = "avg"
above = 4.5
"""
)

# Each live chart's x range, in the page's order.
X_RANGES = "[...document.querySelectorAll('.live-chart')].map(c => [c.plots.v.scales.x.min, c.plots.v.scales.x.max])"


def test_live_page_of_two_devices_shows_a_panel_each_on_one_time_axis(
    browser: Browser, tmp_path: Path
) -> None:
    scenario = tmp_path / "two.toml"
    scenario.write_text(TWO_DEVICES)
    proc, url = start(
        ["run", str(scenario), "--bind", "127.0.0.1:0", "--db", str(tmp_path / "h.db")]
    )
    try:
        # Tall enough that both panels are in view: a chart out of view is not drawn.
        page = browser.new_page(viewport={"width": 1280, "height": 3200})
        errors = watch_errors(page)
        page.goto(url)
        page.wait_for_function(
            "[...document.querySelectorAll('.device .big.v .num')].every(n => n.textContent !== '—')"
            " && document.querySelectorAll('.device').length === 2"
        )
        names = page.eval_on_selector_all(
            ".device .device-name", "els => els.map(e => e.textContent)"
        )
        assert names == ["left", "right"] and page.is_visible(".device-name")
        for name in ("left", "right"):
            panel = f".device[data-device={name}]"
            page.wait_for_function(
                f"document.querySelector('{panel} .link-state').textContent === 'up'", timeout=3000
            )
            assert text(page, f"{panel} .target") == "mock"
            pane = f"{panel} .live-chart .pane[data-measure=v]"
            page.wait_for_function(f"({BLUE_PIXELS})({pane!r}) > 100", timeout=3000)
        ranges = page.evaluate(X_RANGES)
        assert len(ranges) == 2 and ranges[0] == ranges[1], ranges  # one time axis
        # The feed names the device of each event; the expectations say whose they are.
        page.wait_for_selector("#feed li[data-device=right] .device-tag")
        assert text(page, "#feed li[data-device=right] .device-tag") == "right"
        (label,) = page.eval_on_selector_all(
            "#expectations li[data-device=left] .label", "els => els.map(e => e.textContent)"
        )
        assert label == "left: avg v over whole run > 4.5 V"
        page.screenshot(path=tmp_path / "live-two.png", full_page=True)
        assert errors == []
    finally:
        proc.kill()
        proc.wait()


# The page's WebSocket replaced by one that plays two connections: a run of device `a`, which
# drops (not 1001: the page reconnects), then a new run of `b` and `c` whose first samples
# message also names `d`, a device its hello did not list.
SCRIPTED_SOCKET = """
(() => {
  const empty = { t: [], v: [], a: [], w: [], vmin: [], vmax: [], amax: [], status: [] };
  const device = (name) => ({ name, target: "mock", backlog: empty, outliers: [], supply: { t: [], v: [], a: [] } });
  const hello = (scenario, names) => ({
    type: "hello",
    data: {
      mode: "live", window: 60, profile: [[0, 5.0, 0.25]], steps: [], events: [], queue: { samples: 128, events: 64 },
      run: { scenario, target: "mock", seed: 1, started: Date.now() / 1000, duration: 60, run_id: null },
      devices: names.map(device),
    },
  });
  const sample = (name, seq) => ({
    device: name, missed: 0,
    data: { v: 5, a: 0.25, w: 1.25, ts: seq, seq, status: "ok", boot: 1, vmin: 5, vmax: 5, amax: 0.25,
            n: 1, dt: 100, t: Date.now() / 1000, arrived: Date.now() / 1000 },
  });
  let opened = 0;
  window.WebSocket = class {
    constructor() {
      const n = opened++;
      setTimeout(() => {
        this.onopen?.();
        const send = (m) => this.onmessage?.({ data: JSON.stringify(m) });
        if (n === 0) {
          send(hello("first", ["a"]));
          setTimeout(() => this.onclose?.({ code: 1006 }), 1000);
        } else {
          send(hello("second", ["b", "c"]));
          send({ type: "measurements", items: [sample("b", 1), sample("d", 1), sample("c", 1)] });
        }
      }, 10);
    }
    close() {}
  };
})();
"""


def test_live_page_rebuilds_for_a_new_runs_devices_and_shows_an_unlisted_one(
    browser: Browser, tmp_path: Path
) -> None:
    scenario = tmp_path / "two.toml"
    scenario.write_text(TWO_DEVICES)
    proc, url = start(
        ["run", str(scenario), "--bind", "127.0.0.1:0", "--db", str(tmp_path / "h.db")]
    )
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 3200})
        errors = watch_errors(page)
        page.add_init_script(SCRIPTED_SOCKET)
        page.goto(url)
        names = "[...document.querySelectorAll('.device')].map(d => d.dataset.device).join()"
        page.wait_for_function(f"{names} === 'a'")
        assert page.is_hidden(".device .device-name")  # one device: no name, as always
        page.wait_for_function(f"{names} === 'b,c,d'")
        assert text(page, "#run-name") == "second"
        assert text(page, ".device[data-device=d] .target") == "—"
        assert page.is_visible(".device[data-device=d] .device-name")
        assert errors == []
    finally:
        proc.kill()
        proc.wait()


def test_run_and_history_pages_select_a_device(browser: Browser, tmp_path: Path) -> None:
    scenario = tmp_path / "two.toml"
    scenario.write_text(TWO_DEVICES)
    db = tmp_path / "h.db"
    assert main(["run", str(scenario), "--fast", "--no-view", "--db", str(db)]) == 0
    with viewing(db) as (proc, url):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = watch_errors(page)
        page.goto(url + "runs/1")
        page.wait_for_selector("#events tbody tr[data-device=right]")
        options = page.eval_on_selector_all("#device option", "els => els.map(e => e.value)")
        assert options == ["", "left", "right"] and page.input_value("#device") == ""
        with page.expect_response(lambda r: "/api/history" in r.url) as history:
            page.select_option("#device", "right")
        assert history.value.ok and history.value.url.endswith("&device=right")
        assert page.url == url + "runs/1?device=right"  # the address follows the choice
        assert page.get_attribute("#csv", "href") == "/api/export.csv?run=1&device=right"
        page.wait_for_function(
            "[...document.querySelectorAll('#events tbody tr')].every(r => r.dataset.device === 'right')"
        )
        assert text(page, "#expectations") == "no expectations"  # left's alone
        page.goto(url + "history?device=left")
        page.wait_for_selector("#info:not(:empty)")
        assert page.input_value("#device") == "left" and "buckets" in text(page, "#info")
        assert (page.get_attribute("#csv", "href") or "").endswith("&device=left")
        assert errors == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
