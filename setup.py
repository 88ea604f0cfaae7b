"""Only the viewer's build step; everything else about the package is in pyproject.toml.

A built package (`pip install .`, a wheel) must serve the viewer without the repository: build_py
copies web/templates and web/static into harness/viewer/web/ and uPlot (npm ci per
web/package-lock.json, web/build.py) into harness/viewer/static/vendor/. An editable install
serves web/ from the checkout instead (see harness/viewer/assets.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_with_viewer(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        spec = importlib.util.spec_from_file_location("web_build", ROOT / "web" / "build.py")
        assert spec is not None and spec.loader is not None
        web_build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(web_build)
        web_build.site(Path(self.build_lib) / "harness" / "viewer")


setup(cmdclass={"build_py": build_py_with_viewer})
