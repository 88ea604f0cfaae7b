"""Builds what the viewer serves from npm: installs web/package-lock.json's uPlot (npm ci) and
copies the files the pages load into harness/viewer/static/vendor/ (git-ignored). Used by
`make web-assets` (web/web.mk) and by setup.py when a package is built, which also copies
web/templates and web/static into the package (harness/viewer/web/). Standard library only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
VENDOR = ROOT / "harness" / "viewer" / "static" / "vendor"
FILES = {
    "uPlot.esm.js": "uplot/dist/uPlot.esm.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",  # inlined in the HTML report
    "LICENSE.uPlot": "uplot/LICENSE",
}
"""Served name -> path under web/node_modules."""
STAMP = ".built"


def _locked_version() -> str:
    lock = json.loads((WEB / "package-lock.json").read_text())
    return lock["packages"]["node_modules/uplot"]["version"]


def _installed_version() -> str | None:
    manifest = WEB / "node_modules" / "uplot" / "package.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("version")


def npm_ci() -> None:
    """node_modules as the lock file says (only when it does not already)."""
    if _installed_version() == _locked_version():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit(
            "web/build.py: npm not found; install it (apt-get install npm) to build the viewer"
        )
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True)


def vendor(dest: Path = VENDOR) -> Path:
    """uPlot into dest (default: harness/viewer/static/vendor/), with a stamp of its version."""
    npm_ci()
    dest.mkdir(parents=True, exist_ok=True)
    for name, source in FILES.items():
        shutil.copyfile(WEB / "node_modules" / source, dest / name)
    (dest / STAMP).write_text(_locked_version() + "\n")
    return dest


def site(package: Path) -> None:
    """Everything served, into a built package's harness/viewer/ folder."""
    for folder in ("templates", "static"):
        target = package / "web" / folder
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(WEB / folder, target)
    vendor(package / "static" / "vendor")


if __name__ == "__main__":
    print(f"uPlot {_locked_version()} -> {vendor().relative_to(ROOT)}")
