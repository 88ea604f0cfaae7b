"""The run record: everything a run concluded, as JSON (`--json`) and JUnit XML (`--junit`)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.errors import UserError


def write_json(record: dict[str, Any], path: Path) -> None:
    _write(path, json.dumps(record, indent=2, default=str) + "\n")


def junit_xml(record: dict[str, Any]) -> str:
    """One testsuite (the scenario), one testcase per expectation; a failure carries the
    measured value. Jenkins and GitLab read this shape."""
    scenario = record["scenario"]
    expectations = record["expectations"]
    failures = sum(e["state"] != "pass" for e in expectations)
    suite = ET.Element(
        "testsuite",
        name=scenario["name"],
        tests=str(len(expectations)),
        failures=str(failures),
        errors="0",
        time=f"{record['wall_seconds']:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key in ("target", "seed", "verdict"):
        ET.SubElement(props, "property", name=key, value=str(record[key]))
    for e in expectations:
        case = ET.SubElement(
            suite, "testcase", classname=f"powerhil.{scenario['name']}", name=e["label"], time="0"
        )
        if e["state"] != "pass":
            failure = ET.SubElement(
                case,
                "failure",
                message=f"measured: {e['detail'] or e['measured']}",
                type=e["state"],
            )
            failure.text = json.dumps(e)
    out = ET.SubElement(suite, "system-out")
    out.text = json.dumps({"link": record["link"], "injected": record["injected"]})
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def write_junit(record: dict[str, Any], path: Path) -> None:
    _write(path, junit_xml(record))


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
