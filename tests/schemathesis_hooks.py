"""A schemathesis check beside its own (loaded with SCHEMATHESIS_HOOKS by
tests/test_viewer_openapi.py): an answer said to be JSON is strict JSON, with no NaN or
Infinity (Python's json reads them; a page's JSON.parse refuses them)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


@schemathesis.check
def strict_json(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    content_type = ";".join(response.headers.get("content-type", [])).lower()
    if "json" not in content_type:
        return None
    try:
        json.loads(response.content, parse_constant=_refuse)
    except ValueError as exc:
        raise AssertionError(f"not strict JSON: {exc}") from None
    return True
