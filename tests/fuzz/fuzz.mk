# The fuzz targets (tests/fuzz/), included by the root Makefile:
#   make fuzz         each target for FUZZ_SECONDS (default 300) on a corpus kept in
#                     build/fuzz/corpus/ between runs; inputs that crash go to build/fuzz/crashes/
#   make fuzz-smoke   the inputs in tests/fuzz/regressions/ once, then each target for
#                     FUZZ_SMOKE_SECONDS (default 8) from the seeds alone: `make test` runs it
# host: atheris (libFuzzer for Python, from PyPI) on the decoder and HostLink
#       (tests/fuzz/fuzz_host.py); device: libFuzzer with AddressSanitizer and UBSan on the C++
#       device core firmware/lib/powerlink (tests/fuzz/fuzz_device.cpp), built with clang++.
# The seeds (tests/fuzz/corpus/host, .../device) are made from tests/vectors/ on each run.
FUZZ_BUILD := build/fuzz
FUZZ_CXX ?= clang++
FUZZ_CXXFLAGS := -std=c++11 -O1 -g -Wall -Wextra -Wconversion -Werror \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_DEVICE := $(FUZZ_BUILD)/fuzz-device
FUZZ_DEVICE_SRCS := tests/fuzz/fuzz_device.cpp $(wildcard firmware/lib/powerlink/*.cpp)
FUZZ_DEVICE_DEPS := $(FUZZ_DEVICE_SRCS) $(wildcard firmware/lib/powerlink/*.h) tests/fuzz/fuzz.mk
FUZZ_HOST := $(BIN)/python tests/fuzz/fuzz_host.py
FUZZ_SEEDS := tests/fuzz/corpus
FUZZ_REGRESSIONS := tests/fuzz/regressions
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 8
# -timeout: an input that takes this long is a hang; -max_len bounds what is generated (the
# seeds' sessions are a few kB); -print_final_stats gives the runs and their rate at the end.
FUZZ_FLAGS := -timeout=10 -max_len=4096 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crashes/

.PHONY: fuzz fuzz-smoke fuzz-seeds fuzz-device

fuzz-device: $(FUZZ_DEVICE)

$(FUZZ_DEVICE): $(FUZZ_DEVICE_DEPS)
	@command -v $(FUZZ_CXX) >/dev/null || { \
	  echo "fuzz: $(FUZZ_CXX) missing: apt-get install clang libclang-rt-14-dev" >&2; exit 2; }
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -Ifirmware/lib/powerlink -Ifirmware/lib/ina219 -o $@ $(FUZZ_DEVICE_SRCS)

fuzz-seeds: $(STAMP)
	@$(BIN)/python -m tests.fuzz.seeds $(FUZZ_SEEDS)

# $(call fuzz_run,TARGET,COMMAND,SECONDS,CORPUS): fuzz from CORPUS (new inputs are written
# there) and the seeds.
fuzz_run = mkdir -p $(4) $(FUZZ_BUILD)/crashes && \
  $(2) $(FUZZ_FLAGS) -max_total_time=$(3) $(4) $(FUZZ_SEEDS)/$(1) 2>$(FUZZ_BUILD)/$(1).log; \
  status=$$?; grep -E '^(\#[0-9]+[[:space:]]+DONE|Done )' $(FUZZ_BUILD)/$(1).log \
    | sed 's/^/fuzz $(1): /'; \
  test $$status = 0 || { tail -n 40 $(FUZZ_BUILD)/$(1).log; exit 1; }

# $(call fuzz_replay,TARGET,COMMAND): run each kept input once.
fuzz_replay = inputs=$$(find $(FUZZ_REGRESSIONS)/$(1) -type f 2>/dev/null); \
  test -z "$$inputs" || $(2) $$inputs >$(FUZZ_BUILD)/$(1)-replay.log 2>&1 || { \
    tail -n 40 $(FUZZ_BUILD)/$(1)-replay.log; exit 1; }

fuzz-smoke: $(STAMP) $(FUZZ_DEVICE) fuzz-seeds
	@mkdir -p $(FUZZ_BUILD)
	@$(call fuzz_replay,host,$(FUZZ_HOST))
	@$(call fuzz_replay,device,$(FUZZ_DEVICE))
	@rm -rf $(FUZZ_BUILD)/smoke
	@$(call fuzz_run,host,$(FUZZ_HOST),$(FUZZ_SMOKE_SECONDS),$(FUZZ_BUILD)/smoke/host)
	@$(call fuzz_run,device,$(FUZZ_DEVICE),$(FUZZ_SMOKE_SECONDS),$(FUZZ_BUILD)/smoke/device)

fuzz: $(STAMP) $(FUZZ_DEVICE) fuzz-seeds
	@$(call fuzz_run,host,$(FUZZ_HOST),$(FUZZ_SECONDS),$(FUZZ_BUILD)/corpus/host)
	@$(call fuzz_run,device,$(FUZZ_DEVICE),$(FUZZ_SECONDS),$(FUZZ_BUILD)/corpus/device)

TEST_DEPS += fuzz-smoke
