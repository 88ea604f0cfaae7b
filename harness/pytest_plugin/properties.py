"""A run's record as test properties (`record_property`; `--junitxml` writes them into the
test case's <properties>), and the lines of the verdict table a failed test shows."""

from __future__ import annotations

from harness.runner.console import expectation_lines
from harness.runner.record import RunRecord
from harness.scenario.expect.states import MARGINAL, PASS

PREFIX = "powerhil"


def properties(record: RunRecord) -> list[tuple[str, object]]:
    """`powerhil.verdict`, `.target`, `.seed`, `.samples` (delivered), `.lost`, `.duplicated`,
    then for each expectation and each check every run makes `powerhil.<label>.state`,
    `.measured` (in `.unit`, its base unit), `.limit` and `.margin` (how far inside its nearest
    limit, in `.unit`; negative: outside) where it has them. A label the
    scenario repeats is told apart by its number: `powerhil.<label>#3.state`."""
    link = record.link
    out: list[tuple[str, object]] = [
        (f"{PREFIX}.verdict", record.verdict),
        (f"{PREFIX}.target", record.target),
        (f"{PREFIX}.seed", record.seed),
        (f"{PREFIX}.samples", link.delivered),
        (f"{PREFIX}.lost", link.lost),
        (f"{PREFIX}.duplicated", link.duplicated),
    ]
    judged = [*record.expectations, *record.checks]
    labels = [e.label for e in judged]
    for e in judged:
        name = e.label if labels.count(e.label) == 1 else f"{e.label}#{e.number}"
        out.append((f"{PREFIX}.{name}.state", e.state))
        for key, number in (("measured", e.measured), ("margin", e.margin)):
            if number is not None:
                out.append((f"{PREFIX}.{name}.{key}", number))
        for key, value in (("unit", e.unit), ("limit", e.limit)):
            if value:
                out.append((f"{PREFIX}.{name}.{key}", value))
    return out


def failed_lines(record: RunRecord) -> str:
    """The verdict table's lines of what did not hold (a marginal one holds), or the error that
    ended the run."""
    judged = [*record.expectations, *record.checks]
    lines = [
        line.strip()
        for e, line in zip(judged, expectation_lines(record), strict=True)
        if e.state not in (PASS, MARGINAL)
    ]
    if record.error:
        lines.append(f"error: {record.error}")
    return "\n".join(lines) or f"verdict {record.verdict}"
