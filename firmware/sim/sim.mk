# The simavr board runner (firmware/sim), included by the root Makefile.
#   make sim            -> firmware/build/sim/powerhil-sim and the runner's test sketch
# simavr is GPL-3: the runner links it and is built here, never shipped as a binary.
SIM_DIR := firmware/sim
SIM_OUT := firmware/build/sim
SIM_BIN := $(SIM_OUT)/powerhil-sim
SIM_SKETCH_ELF := $(SIM_OUT)/testsketch/testsketch.elf
SIM_SRCS := $(addprefix $(SIM_DIR)/,powerhil_sim.c ina219.c pty_bridge.c twi_timing.c)
SIM_HDRS := $(addprefix $(SIM_DIR)/,ina219.h pty_bridge.h twi_timing.h)
SIM_CC ?= cc
SIM_CFLAGS ?= -O2 -g -std=c11 -Wall -Wextra -Werror=implicit-function-declaration
# libsimavr's pkg-config file wants libelf.pc (libelf-dev), which the runner does not need:
# the flags are spelled out rather than taken from `pkg-config simavr simavrparts`.
SIM_INC ?= -I/usr/include/simavr -I/usr/include/simavr/parts
# libsimavr is linked statically (Debian's libsimavr-dev ships the archive): the interpreter's
# calls into itself then skip the shared library's indirections, which --fast runs feel
# (docs/performance.md). Its libelf is Debian's runtime library, named by its soname.
SIM_LIBS ?= -Wl,-Bstatic -lsimavr -Wl,-Bdynamic -l:libelf.so.1 -lutil -lm
# (libsimavrparts is not linked: its uart_pty part is replaced by pty_bridge.c, see there.)

.PHONY: sim sim-check
sim: $(SIM_BIN) $(SIM_SKETCH_ELF)

sim-check:
	@test -f /usr/include/simavr/sim_avr.h || { echo "sim: simavr headers missing: sudo apt-get install simavr libsimavr-dev libsimavrparts1" >&2; exit 2; }
	@command -v avr-gcc >/dev/null && test -f /usr/share/arduino/Arduino.mk || { echo "sim: AVR toolchain missing: sudo apt-get install gcc-avr avr-libc binutils-avr arduino-core-avr arduino-mk" >&2; exit 2; }

$(SIM_BIN): $(SIM_SRCS) $(SIM_HDRS) $(SIM_DIR)/sim.mk | sim-check
	@mkdir -p $(SIM_OUT)
	$(SIM_CC) $(SIM_CFLAGS) $(SIM_INC) -o $@ $(SIM_SRCS) $(SIM_LIBS)

# arduino-mk is chatty and Debian's core warns: the log is shown only when the build fails.
# MAKEFLAGS is emptied: under `make -B` arduino-mk would try to remake the core's headers.
$(SIM_SKETCH_ELF): $(SIM_DIR)/testsketch/testsketch.ino $(SIM_DIR)/testsketch/Makefile | sim-check
	@mkdir -p $(SIM_OUT)
	@echo "arduino-mk $(SIM_DIR)/testsketch -> $@"
	@MAKEFLAGS= $(MAKE) -s -C $(SIM_DIR)/testsketch >$(SIM_OUT)/testsketch.log 2>&1 \
		|| { cat $(SIM_OUT)/testsketch.log >&2; exit 1; }

TEST_DEPS += sim
