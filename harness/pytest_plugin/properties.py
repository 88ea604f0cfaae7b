"""A run's record as test properties (`record_property`; `--junitxml` writes them into the
test case's <properties>), and the lines of the verdict table a failed test shows."""

from __future__ import annotations

from harness.runner.console import expectation_lines
from harness.runner.record import RunRecord
from harness.scenario.expect.states import MARGINAL, PASS

PREFIX = "powerhil"


def properties(record: RunRecord) -> list[tuple[str, object]]:
    """`powerhil.verdict`, `.target`, `.seed`, `.samples` (delivered), `.lost`, `.duplicated`
    (in a run of several devices, their sums), then for each of several devices
    `powerhil.<device>.verdict`, `.target`, `.samples`, `.lost`, `.duplicated` (and `.port`,
    `.error` where it has them), then for each expectation and each check every run makes
    `powerhil.<label>.state`, `.measured` (in `.unit`, its base unit), `.limit` and `.margin`
    (how far inside its nearest limit, in `.unit`; negative: outside) where it has them. In a
    run of several devices a label starts with its device's name (`left: sag depth`); a label
    the scenario repeats is told apart by its number: `powerhil.<label>#3.state`."""
    link = record.link
    out: list[tuple[str, object]] = [
        (f"{PREFIX}.verdict", record.verdict),
        (f"{PREFIX}.target", record.target),
        (f"{PREFIX}.seed", record.seed),
        (f"{PREFIX}.samples", link.delivered),
        (f"{PREFIX}.lost", link.lost),
        (f"{PREFIX}.duplicated", link.duplicated),
    ]
    if len(record.devices) > 1:
        for d in record.devices:
            name = f"{PREFIX}.{d.name}"
            out += [
                (f"{name}.verdict", d.verdict),
                (f"{name}.target", d.target),
                (f"{name}.samples", d.link.delivered),
                (f"{name}.lost", d.link.lost),
                (f"{name}.duplicated", d.link.duplicated),
            ]
            out += [(f"{name}.{key}", v) for key, v in (("port", d.port), ("error", d.error)) if v]
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
    ended the run. In a run of several devices the first line names the devices that failed
    (what pytest's short summary shows), and each line after it its device."""
    judged = [*record.expectations, *record.checks]
    lines = [
        line.strip()
        for e, line in zip(judged, expectation_lines(record), strict=True)
        if e.state not in (PASS, MARGINAL)
    ]
    if record.error:
        lines.append(f"error: {record.error}")
    failed = [d for d in record.devices if d.verdict not in (PASS, MARGINAL)]
    if len(record.devices) > 1 and failed:
        held = [d for d in record.devices if d.verdict in (PASS, MARGINAL)]
        says = ", ".join(f"{d.name}: {d.verdict}" for d in failed)
        others = ", ".join(f"{d.name}: {d.verdict}" for d in held)
        lines.insert(0, f"{says} ({others})" if others else says)
    return "\n".join(lines) or f"verdict {record.verdict}"
