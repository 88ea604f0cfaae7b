# powerhil — `make run` runs the brownout scenario on the mock; `make test` runs every test;
# `make fuzz` runs the fuzz targets for FUZZ_SECONDS each (tests/fuzz/fuzz.mk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Parts of the build add their own prerequisites of `make test` here (firmware, sim, web, fuzz).
TEST_DEPS :=
RUN_DEPS :=

-include firmware/firmware.mk
-include firmware/sim/sim.mk
-include web/web.mk
-include tests/fuzz/fuzz.mk

.PHONY: run test check deps lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The harness's own bytecode, as a regular `pip install` writes it for an installed package (an
# editable install does not, and with PYTHONDONTWRITEBYTECODE every start compiles each module
# from source, which leaves its garbage in the process's heap: docs/performance.md, "Memory").
BYTECODE := $(VENV)/.bytecode
$(BYTECODE): $(STAMP) $(shell find harness -name '*.py')
	$(BIN)/python -m compileall -q harness
	touch $@

venv: $(STAMP) $(BYTECODE)

run: $(STAMP) $(BYTECODE) $(RUN_DEPS)
	$(BIN)/harness run scenarios/brownout.toml

lint: $(STAMP)
	$(BIN)/ruff check harness tests examples
	$(BIN)/ruff format --check harness tests examples
	$(BIN)/lint-imports --no-cache

# The Debian packages first (installed as root, else one line naming them), then the rest.
test: deps
	@$(MAKE) --no-print-directory check

deps:
	@scripts/debian-deps

check: $(STAMP) $(BYTECODE) $(TEST_DEPS) lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build firmware/build *.egg-info
