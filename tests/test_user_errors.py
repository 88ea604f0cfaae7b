"""What a new user hits: each mistake gives one line on stderr naming the file, field or option
and what to do, and its exit code; never a traceback. One row per case."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from harness.cli import main

GOOD = """\
[scenario]
name = "ok"
duration = "10s"
"""

FILES: dict[str, bytes] = {
    "late-window.toml": (GOOD + '[[expect]]\nalert = "uv"\nwithin = ["5s", "12s"]\n').encode(),
    "late-supply.toml": (
        GOOD
        + '[[supply]]\nat = "0s"\nvolts = 5.0\namps = 0.25\n[[supply]]\nat = "11s"\nvolts = 3.0\n'
    ).encode(),
    "endless.toml": GOOD.replace('"10s"', '"1000000h"').encode(),
    "latin1.toml": GOOD.encode() + b'description = "caf\xe9"\n',
    "bom.toml": b"\xef\xbb\xbf" + GOOD.encode(),
}

CASES: list[tuple[str, list[str], int, str]] = [
    # (case, argv ({tmp} is a scratch folder holding FILES), exit code, stderr's one line)
    ("bare harness prints help", [], 0, ""),
    (
        "unknown option",
        ["run", "x", "--bogus"],
        2,
        r"harness: unrecognized arguments: --bogus \(see harness --help\)",
    ),
    (
        "db without a subcommand",
        ["db"],
        2,
        r"harness db: the following arguments are required: COMMAND",
    ),
    (
        "window past the end",
        ["check", "{tmp}/late-window.toml"],
        2,
        r"late-window.toml:6: expect\[1\]\.within: ends \(12s\) after the scenario does \(10s\); end it by then",
    ),
    (
        "supply point past the end",
        ["check", "{tmp}/late-supply.toml"],
        2,
        r"late-supply.toml:\d+: supply\[2\]\.at: 11s is after the scenario ends \(10s\)",
    ),
    (
        "a million hours",
        ["check", "{tmp}/endless.toml"],
        2,
        r"endless.toml:3: scenario\.duration: .* is longer than a scenario may last \(31d\); `harness monitor` logs without an end",
    ),
    (
        "not UTF-8",
        ["check", "{tmp}/latin1.toml"],
        2,
        r"latin1.toml:4: not UTF-8 text \(byte 0xe9\); save the file as UTF-8",
    ),
    ("a byte order mark is fine", ["check", "{tmp}/bom.toml"], 0, ""),
    (
        "junit into a folder",
        ["run", "{tmp}/bom.toml", "--fast", "--no-view", "--junit", "{tmp}"],
        2,
        r"--junit .*: is a folder; name a file, e\.g\. .*report\.xml",
    ),
    (
        "retention 0s",
        ["run", "{tmp}/bom.toml", "--fast", "--no-view", "--retention", "0s", "--db", "{tmp}/h.db"],
        2,
        r"--retention 0s: at least 1h \(it deletes older data of every run in the log, not only this one's\)",
    ),
    (
        "export reversed",
        ["export", "--db", "{tmp}/h.db", "--since", "2h", "--until", "5h"],
        2,
        r"--since 2h --until 5h: the span ends before it starts \(--since is the earlier time\)",
    ),
    (
        "until with run",
        ["export", "--db", "{tmp}/h.db", "--run", "1", "--until", "5h"],
        2,
        r"--until goes with --since",
    ),
    (
        "since -5h",
        ["export", "--db", "{tmp}/h.db", "--since", "-5h"],
        2,
        r'--since -5h: expected a duration ago \("2h"\) or a local time',
    ),
    (
        "view on a port in use",
        ["view", "--db", "{tmp}/h.db", "--bind", "127.0.0.1:{busy}"],
        2,
        r"--bind 127\.0\.0\.1:\d+: address already in use \(another viewer\?\); use another port, e\.g\. --bind 127\.0\.0\.1:\d+\n",
    ),
    (
        "view on no address of this machine",
        ["view", "--db", "{tmp}/h.db", "--bind", "999.1.1.1:8000"],
        2,
        r"--bind 999\.1\.1\.1:8000: unknown host name; use an address such as 127\.0\.0\.1\n",
    ),
    (
        "run on no address of this machine: no warning first",
        ["run", "{tmp}/bom.toml", "--bind", "999.1.1.1:8000", "--db", "{tmp}/r.db"],
        2,
        r"--bind 999\.1\.1\.1:8000: unknown host name",
    ),
    (
        "frame not JSON",
        ["frame", "notjson"],
        2,
        r"frame: not JSON \(Expecting value at character 0\)",
    ),
    ("frame not an object", ["frame", "[1, 2]"], 2, r"frame: expected a JSON object"),
]


@pytest.mark.parametrize(("case", "argv", "code", "line"), CASES, ids=[c[0] for c in CASES])
def test_one_line_and_its_exit_code(
    case: str,
    argv: list[str],
    code: int,
    line: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    if "damaged.db" in " ".join(argv):
        db = tmp_path / "damaged.db"
        assert (
            main(["run", str(tmp_path / "bom.toml"), "--fast", "--no-view", "--db", str(db)]) == 0
        )
        capsys.readouterr()
        with db.open("r+b") as f:  # one page of the samples' B-tree overwritten
            f.seek(3 * 4096)
            f.write(b"\xde\xad" * 2048)
    if "h.db" in " ".join(argv):
        assert (
            main(
                [
                    "run",
                    str(tmp_path / "bom.toml"),
                    "--fast",
                    "--no-view",
                    "--db",
                    str(tmp_path / "h.db"),
                ]
            )
            == 0
        )
        capsys.readouterr()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = str(busy.getsockname()[1])
    try:
        code_seen = main([a.replace("{tmp}", str(tmp_path)).replace("{busy}", port) for a in argv])
    finally:
        busy.close()
    assert code_seen == code
    err = capsys.readouterr().err
    line = line.replace("{tmp}", re.escape(str(tmp_path)))
    if line:
        assert err.count("\n") == 1, err
        assert re.match(line, err), err
    else:
        assert "Traceback" not in err
