"""A built package (what `pip install .` installs, not the editable checkout) serves the viewer:
the wheel carries the templates, scripts, styles and uPlot, and runs from them alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_serves_the_viewer(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("powerhil-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "harness/viewer/static/vendor/uPlot.esm.js",
        "harness/viewer/static/vendor/uPlot.min.css",
        "harness/viewer/static/vendor/uPlot.iife.min.js",  # inlined by the HTML report
        "harness/report/templates/report.html.j2",
        "harness/viewer/web/templates/live.html",
        "harness/viewer/web/static/js/live.js",
        "harness/viewer/web/static/css/viewer.css",
    ):
        assert name in names, name
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    db = tmp_path / "h.db"
    assert main(["run", "scenarios/clean.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    env = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run(
        [sys.executable, "-c", "import harness.viewer.assets as a; print(a.web_root())"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.strip() == str(installed / "harness" / "viewer" / "web")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "view", "--db", str(db), "--bind", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        match = re.match(r"viewer: (http://\S+)", proc.stdout.readline())
        assert match, proc.stderr.read() if proc.stderr else ""
        url = match.group(1)
        for path in (
            "runs",
            "runs/1",
            "history",
            "static/js/live.js",
            "static/vendor/uPlot.esm.js",
        ):
            with urllib.request.urlopen(url + path, timeout=10) as response:
                assert response.status == 200, path
                assert response.read(), path
    finally:
        proc.terminate()
        proc.wait(timeout=5)
