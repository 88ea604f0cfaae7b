"""atheris (libFuzzer for Python) on the decoder and HostLink: tests/fuzz/host_target.py's
check_host on every input, with harness.link's code instrumented for coverage.

    python tests/fuzz/fuzz_host.py [libFuzzer flags] CORPUS_DIR...

`make fuzz` and `make fuzz-smoke` (tests/fuzz/fuzz.mk) run it. A crash is any exception: Broken
(something that must hold did not) or any other; libFuzzer saves the input that raised it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fuzz

with atheris.instrument_imports(include=["harness.link", "tests.fuzz"]):
    from tests.fuzz.host_target import check_host


def main() -> None:
    atheris.Setup(sys.argv, check_host)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
