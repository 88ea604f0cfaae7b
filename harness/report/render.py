"""The report as one HTML file: the jinja2 template (autoescaped) with uPlot's script and style
inlined from the installed package (`make web-assets` puts it in the viewer's vendor folder) and
the chart's data in a JSON block, so the file loads nothing: it opens from disk, offline."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from harness.errors import UserError

UPLOT_FILES = ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE.uPlot")
"""The build of uPlot that defines a global (a file has no module to import it from), its
style and its licence."""
_BANNER = re.compile(r"\A/\*!.*?\*/\s*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class UPlot:
    """uPlot as the report inlines it: its script without its banner comment (which is a URL:
    the file names none), its style, and its licence, which the report carries in its place."""

    js: str
    css: str
    license: str
    version: str


def load_uplot(folder: Path) -> UPlot:
    """uPlot from `folder`, or one line naming what is missing and how to install it."""
    texts = []
    for name in UPLOT_FILES:
        path = folder / name
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError:
            raise UserError(
                f"{path}: missing; the HTML report inlines uPlot from it (run `make web-assets`)"
            ) from None
    js, css, license_text = texts
    stamp = folder / ".built"
    version = stamp.read_text().strip() if stamp.is_file() else ""
    return UPlot(
        js=_BANNER.sub("", js, count=1).replace("</script", "<\\/script"),
        css=css.replace("</style", "<\\/style"),
        license=license_text.replace("*/", "* /"),
        version=version,
    )


_ENV = Environment(
    loader=PackageLoader("harness.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(data: dict[str, Any], uplot: UPlot) -> str:
    """The report's HTML for `data` (`harness.report.data.report_data`)."""
    return _ENV.get_template("report.html.j2").render(**data, uplot=uplot)


def write_report(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a temporary file beside it, renamed over it,
    so a reader (a CI keeping the artefact) never finds half a report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
