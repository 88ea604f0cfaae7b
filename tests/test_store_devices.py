"""Every row of the log names its device: two devices of one run whose samples have the same
boot, seq and time are both kept, and history, events, readbacks, a run's page, the CSV export
(`harness export --device`) and the viewer's API select one device or give all of them."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.cli import main
from harness.link import Sample
from harness.runner.bus import RunEvent, SampleEvent
from harness.store import queries
from harness.store.db import add_device, create_run, finish_run, open_for_reading, open_for_writing
from harness.store.export import export_run
from harness.store.writer import StoreWriter
from harness.viewer.app import create_app

WALL0 = 1_800_000_000.0
VOLTS = {"a": 5.0, "b": 3.3}
SAMPLES = 60


def sample(seq: int, v: float) -> SampleEvent:
    """A 1 s sample ending at seq + 0.5 s: the same boot, seq and time for every device."""
    s = Sample(seq, 4, (seq + 1) * 1000, 1000, v, 0.1, v * 0.1, v - 0.01, v + 0.01, 0.11, 10, "ok")
    return SampleEvent(s, seq - 0.5, seq + 0.5, seq + 0.5)


async def write_two_devices(db: Path) -> None:
    """One run, two devices `a` and `b` (5 V and 3.3 V), each with the same samples, a
    readback of its supply and an alert; each device's writer in turn on the run's connection."""
    conn = open_for_writing(db)
    run = create_run(conn, "run", "two", "mock", 1, WALL0, "a")
    add_device(conn, run, "b", "mock")
    for name, volts in VOLTS.items():
        writer = StoreWriter(conn, run, WALL0, trio.current_time(), device=name)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            for seq in range(SAMPLES):
                writer.take(sample(seq, volts))
            writer.take(RunEvent("readback", 10.0, {"volts": volts, "amps": 0.1}))
            writer.take(RunEvent("alert", 20.0, {"status": "uv", "device": name}))
            writer.close()
    finish_run(conn, run, WALL0 + SAMPLES + 1, "pass", {"device": {"boots": [4]}}, "b")
    conn.close()


@pytest.fixture
async def two_devices(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> Path:
    db = tmp_path / "two.db"
    await write_two_devices(db)
    return db


async def test_two_devices_with_the_same_samples_are_both_kept(two_devices: Path) -> None:
    conn = open_for_reading(two_devices)
    assert conn.execute("SELECT device, count(*) FROM samples GROUP BY device").fetchall() == [
        ("a", SAMPLES),
        ("b", SAMPLES),
    ]
    span = (WALL0, WALL0 + SAMPLES)
    for points, source in ((SAMPLES, "raw"), (1, "rollup_60")):
        for name, volts in VOLTS.items():
            h = queries.history(conn, *span, points, device=name)
            assert h["source"] == source and sum(h["n"]) == SAMPLES * 10
            assert h["v_avg"][0] == pytest.approx(volts)
        both = queries.history(conn, *span, points, run=1)
        assert sum(both["n"]) == 2 * SAMPLES * 10
        assert (min(both["v_min"]), max(both["v_max"])) == (3.29, 5.01)
    for name, volts in VOLTS.items():
        assert queries.readbacks(conn, 1, *span, 1, name)["volts"] == [volts]
        (alert,) = queries.events(conn, 1, ("alert",), device=name)
        assert alert["device"] == name == alert["data"]["device"]
    assert len(queries.events(conn, 1, ("alert",))) == 2
    run = queries.run(conn, 1)
    assert run is not None and run["samples"]["count"] == 2 * SAMPLES
    assert [(d["name"], d["boots"], d["samples"]["count"]) for d in run["devices"]] == [
        ("a", [], SAMPLES),
        ("b", [4], SAMPLES),
    ]
    assert queries.device_names(conn) == ["a", "b"]
    assert (
        queries.unknown_device(conn, "c", 1) == "run 1 of the log has no such device (it has: a, b)"
    )


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_export_has_a_device_column_and_selects_a_device(two_devices: Path) -> None:
    conn = open_for_reading(two_devices)
    out = io.StringIO()
    assert export_run(conn, 1, out) == 2 * SAMPLES
    assert out.getvalue().startswith("run,device,boot,seq,time_utc,t,")
    every = csv_rows(out.getvalue())
    for name, volts in VOLTS.items():
        out = io.StringIO()
        assert export_run(conn, 1, out, name) == SAMPLES
        rows = csv_rows(out.getvalue())
        assert rows == [r for r in every if r["device"] == name]
        assert {(r["v"], r["supply_v"]) for r in rows if r["seq"] == "10"} == {
            (str(volts), str(volts))  # the readback of the device's own supply, not the other's
        }


def test_harness_export_device_selects_and_an_unknown_one_names_those_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A single-device run is device `dut` throughout: its samples, its devices row (with the
    firmware and boots of its record), and `harness export --device dut` gives all of them."""
    db = tmp_path / "h.db"
    assert main(["run", "scenarios/brownout.toml", "--fast", "--no-view", "--db", str(db)]) == 0
    conn = open_for_reading(db)
    assert conn.execute("SELECT DISTINCT device FROM samples").fetchall() == [("dut",)]
    assert conn.execute("SELECT DISTINCT device FROM events").fetchall() == [("dut",)]
    ((name, target, firmware, boots),) = conn.execute(
        "SELECT name, target, firmware, boots FROM devices WHERE run = 1"
    ).fetchall()
    assert (name, target, firmware) == ("dut", "mock", "1.0.0") and len(boots) > 2
    every, dut = tmp_path / "every.csv", tmp_path / "dut.csv"
    assert main(["export", "--db", str(db), "--run", "1", "--csv", str(every)]) == 0
    assert (
        main(["export", "--db", str(db), "--run", "1", "--device", "dut", "--csv", str(dut)]) == 0
    )
    assert dut.read_text() == every.read_text() and len(csv_rows(dut.read_text())) > 15
    capsys.readouterr()
    for args, told in (
        (
            ["--run", "1", "--device", "b"],
            f"--device b: run 1 of {db} has no such device (it has: dut)",
        ),
        (["--since", "1h", "--device", "b"], f"--device b: {db} has no such device (it has: dut)"),
        (["--daily", str(tmp_path), "--device", "dut"], "--device goes with --run or --since"),
    ):
        assert main(["export", "--db", str(db), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(told), err


@pytest.fixture
async def client(two_devices: Path) -> AsyncIterator[Any]:
    app = create_app(None, two_devices)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def get(client: Any, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status_code == status, (url, await response.get_data(as_text=True))
    return response


async def test_the_api_selects_a_device(client: Any) -> None:
    span = f"from={WALL0}&to={WALL0 + SAMPLES}&points=1"
    for name, volts in VOLTS.items():
        h = await (await get(client, f"/api/history?{span}&device={name}")).get_json()
        assert h["v_avg"] == [pytest.approx(volts)] and h["n"] == [SAMPLES * 10]
        events = await (
            await get(client, f"/api/runs/1/events?kinds=alert&device={name}")
        ).get_json()
        assert [e["device"] for e in events["events"]] == [name]
        response = await get(client, f"/api/export.csv?run=1&device={name}")
        assert f'filename="powerhil-{name}-run-1.csv"' in response.headers["Content-Disposition"]
        rows = csv_rows(await response.get_data(as_text=True))
        assert len(rows) == SAMPLES and {r["device"] for r in rows} == {name}
    h = await (await get(client, f"/api/history?{span}&device=")).get_json()
    assert h["n"] == [2 * SAMPLES * 10]  # an empty device is every device
    run = await (await get(client, "/api/runs/1")).get_json()
    assert [d["name"] for d in run["devices"]] == ["a", "b"]
    for url, told in (
        (f"/api/history?{span}&device=c", "device=c: the log has no such device (it has: a, b)"),
        (f"/api/history?{span}&run=1&device=c", "device=c: run 1 of the log has no such device"),
        ("/api/runs/1/events?device=c", "device=c: run 1 of the log has no such device"),
        (f"/api/export.csv?{span}&device=c", "device=c: the log has no such device (it has: a, b)"),
    ):
        response = await get(client, url, 404)
        assert (await response.get_json())["error"].startswith(told)
