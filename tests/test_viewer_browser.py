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
from pathlib import Path
from statistics import median
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from harness.bench.live import memory_kb, percentile
from harness.cli import main

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
      if (message.type === "measurement") window.__latencies.push(now - message.data.arrived * 1000);
    });
  }
};
"""

# Pixels of the V line's blue in the chart's canvas: the chart has data drawn, not just axes.
BLUE_PIXELS = """
(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  if (!canvas) return 0;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
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
        page.wait_for_function("document.querySelector('#v .num').textContent !== '—'")
        first = text(page, "#sample-info")
        page.wait_for_function(
            f"document.querySelector('#sample-info').textContent !== {json.dumps(first)}",
            timeout=3000,
        )
        assert re.fullmatch(r"\d\.\d{3}", text(page, "#v .num"))
        assert re.fullmatch(r"\d\.\d{4}", text(page, "#a .num"))
        # The link health comes with the stats, twice a second: it says "up" by the next one.
        page.wait_for_function(
            "document.querySelector('#link-state').textContent === 'up'", timeout=3000
        )
        assert text(page, "#target") == "mock"
        # The chart is drawn, at 10 frames a second, from a bounded buffer.
        page.wait_for_function(f"({BLUE_PIXELS})('#chart') > 200", timeout=3000)
        # Latency from here on: loading the page and polling its canvas keep its thread busy.
        page.evaluate("window.__latencies = []")
        draws = int(page.get_attribute("#chart", "data-draws") or 0)
        time.sleep(1.0)
        figures["fps"] = int(page.get_attribute("#chart", "data-draws") or 0) - draws
        assert figures["fps"] >= 10
        assert int(page.get_attribute("#chart", "data-points") or 0) <= 60 / 0.25 + 40
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


def test_runs_and_history_pages_over_the_log(browser: Browser, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    proc, url = start(["view", "--db", str(db), "--bind", "127.0.0.1:0"])
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors = watch_errors(page)
        page.goto(url)  # no live run: the runs page
        page.wait_for_selector("#runs tbody tr[data-run='1']")
        assert "brownout" in text(page, "#runs tbody") and "pass" in text(page, "#runs tbody")
        page.click("#runs tbody a[href='/runs/1']")
        page.wait_for_function(f"({BLUE_PIXELS})('#chart') > 200")
        assert text(page, "#verdict") == "pass"
        assert (
            page.eval_on_selector_all("#expectations li", "els => els.map(e => e.dataset.state)")
            == ["pass"] * 6
        )
        page.wait_for_selector("#events tbody tr.alert")
        assert page.get_attribute("#csv", "href") == "/api/export.csv?run=1"
        # Drag across the chart: finer buckets are fetched for the span.
        before = int(page.get_attribute("#chart", "data-points") or 0)
        box = page.locator("#chart .u-over").bounding_box()
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
    finally:
        proc.kill()
        proc.wait()
