"""Where the served files are.

The front end's source is web/ in the repository (templates/, static/). uPlot comes from npm
(web/package.json) and is copied into harness/viewer/static/vendor/ by `make web-assets`
(web/build.py). A built package (`pip install .`, a wheel) carries a copy of web/'s templates and
static files in harness/viewer/web/ and uPlot in harness/viewer/static/vendor/ (setup.py's
build step); a source checkout (an editable install) serves web/ where it is.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
VENDOR = PACKAGE / "static" / "vendor"
UPLOT = ("uPlot.esm.js", "uPlot.min.css")


def web_root() -> Path:
    packaged = PACKAGE / "web"
    if (packaged / "templates").is_dir():
        return packaged
    return PACKAGE.parent.parent / "web"


def missing() -> list[str]:
    """What the viewer cannot serve, as paths to tell the user about (empty when complete)."""
    root = web_root()
    need = [root / "templates" / "live.html", root / "static" / "js" / "live.js"]
    need += [VENDOR / name for name in UPLOT]
    return [str(p) for p in need if not p.is_file()]
