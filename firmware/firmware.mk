# The firmware (firmware/), included by the root Makefile:
#   make firmware       Uno image with arduino-mk and Debian's gcc-avr: firmware/build/uno/
#                       powerhil.elf and .hex; prints flash and static SRAM use and fails above
#                       50 % of the Uno's (16,128 B flash, 1,024 B SRAM)
#   make firmware-test  the doctest host tests (firmware/test/test_native/) and the host device
#                       program (firmware/build/host/powerlink-device) the Python cross-check drives
# PlatformIO builds the same sources (platformio.ini); it cannot fetch its toolchains here.
ifndef FW_ARDUINO_BUILD

FW_BUILD := firmware/build
FW_ELF := $(FW_BUILD)/uno/powerhil.elf
FW_HEX := $(FW_BUILD)/uno/powerhil.hex
FW_FLASH_MAX := 16128
FW_SRAM_MAX := 1024
FW_SOURCES := $(wildcard firmware/src/*.cpp firmware/lib/*/*.cpp firmware/lib/*/*.h) firmware/firmware.mk

FW_HOST := $(FW_BUILD)/host
FW_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FW_HOST_CXX ?= g++
# The core is built as the Arduino build compiles it (C++11) plus memory and UB checks, since the
# tests feed it arbitrary bytes; test code is built for speed (nlohmann's json is heavy).
FW_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FW_CORE_FLAGS := -std=c++11 -O1 -g -Wall -Wextra -Wconversion -Werror $(FW_SANITIZE)
FW_TEST_FLAGS := -std=c++17 -O0 -g -Wall -Wextra -Werror
# The host tests read the protocol vectors from this checkout wherever they are run from
# (POWERHIL_VECTORS_DIR in the environment overrides it at run time).
FW_TEST_DEFINES := -DPOWERHIL_VECTORS_DIR='"$(CURDIR)/tests/vectors"'
FW_INCLUDES := -Ifirmware/lib/powerlink -Ifirmware/lib/ina219
FW_CORE_SRCS := $(wildcard firmware/lib/powerlink/*.cpp)
FW_CORE_HDRS := $(wildcard firmware/lib/powerlink/*.h firmware/lib/ina219/*.h)
FW_CORE_OBJS := $(patsubst firmware/lib/powerlink/%.cpp,$(FW_HOST)/core/%.o,$(FW_CORE_SRCS))
# One PlatformIO test suite (pio test -e native runs the same files).
FW_TEST_DIR := firmware/test/test_native
FW_TEST_SRCS := $(wildcard $(FW_TEST_DIR)/*.cpp)
FW_TEST_OBJS := $(patsubst $(FW_TEST_DIR)/%.cpp,$(FW_HOST)/test/%.o,$(FW_TEST_SRCS))
FW_TEST_BIN := $(FW_HOST)/powerlink-tests
FW_DEVICE_BIN := $(FW_HOST)/powerlink-device

.PHONY: firmware firmware-test firmware-host

# Flash is what the image stores (.text + .data); static SRAM is .data + .bss.
firmware: $(FW_HEX)
	@avr-size -A $(FW_ELF) | awk -v flash_max=$(FW_FLASH_MAX) -v sram_max=$(FW_SRAM_MAX) ' \
	  $$1 == ".text" || $$1 == ".data" { flash += $$2 } \
	  $$1 == ".data" || $$1 == ".bss" || $$1 == ".noinit" { sram += $$2 } \
	  END { \
	    printf "firmware (Uno): flash %d B = %.1f %% of 32,256 B (limit %d B); static SRAM %d B = %.1f %% of 2,048 B (limit %d B)\n", \
	      flash, 100 * flash / 32256, flash_max, sram, 100 * sram / 2048, sram_max; \
	    if (flash > flash_max || sram > sram_max) { print "firmware: over 50 % of the Uno" > "/dev/stderr"; exit 1 } }'

# arduino-mk writes the .elf and the .hex in one go.
$(FW_HEX): $(FW_SOURCES)
	@command -v avr-gcc >/dev/null && test -f /usr/share/arduino/Arduino.mk || { \
	  echo "firmware: AVR toolchain missing: apt-get install gcc-avr avr-libc binutils-avr arduino-core-avr arduino-mk" >&2; exit 2; }
	@mkdir -p $(FW_BUILD)
	@$(MAKE) --no-print-directory -j$(FW_JOBS) -C firmware/src -f ../firmware.mk FW_ARDUINO_BUILD=1 all \
	  >$(FW_BUILD)/uno.log 2>&1 || { cat $(FW_BUILD)/uno.log; exit 1; }
	@touch $@

firmware-test:
	@$(MAKE) --no-print-directory -j$(FW_JOBS) -f firmware/firmware.mk $(FW_TEST_BIN) $(FW_DEVICE_BIN)
	$(FW_TEST_BIN)

firmware-host:
	@$(MAKE) --no-print-directory -j$(FW_JOBS) -f firmware/firmware.mk $(FW_DEVICE_BIN)

$(FW_HOST)/core/%.o: firmware/lib/powerlink/%.cpp $(FW_CORE_HDRS) firmware/firmware.mk
	@mkdir -p $(@D)
	$(FW_HOST_CXX) $(FW_CORE_FLAGS) $(FW_INCLUDES) -c -o $@ $<

$(FW_HOST)/test/%.o: $(FW_TEST_DIR)/%.cpp $(FW_TEST_DIR)/support.h $(FW_CORE_HDRS) firmware/firmware.mk
	@mkdir -p $(@D)
	$(FW_HOST_CXX) $(FW_TEST_FLAGS) $(FW_TEST_DEFINES) $(FW_INCLUDES) -c -o $@ $<

$(FW_HOST)/powerlink_device.o: firmware/host/powerlink_device.cpp $(FW_CORE_HDRS) firmware/firmware.mk
	@mkdir -p $(@D)
	$(FW_HOST_CXX) $(FW_TEST_FLAGS) $(FW_INCLUDES) -c -o $@ $<

$(FW_TEST_BIN): $(FW_TEST_OBJS) $(FW_CORE_OBJS)
	$(FW_HOST_CXX) $(FW_SANITIZE) -o $@ $^

$(FW_DEVICE_BIN): $(FW_HOST)/powerlink_device.o $(FW_CORE_OBJS)
	$(FW_HOST_CXX) $(FW_SANITIZE) -o $@ $^

TEST_DEPS += firmware-test firmware

else
# arduino-mk, run from firmware/src by the rule above: the same sources PlatformIO builds.
ARDUINO_DIR := /usr/share/arduino
ARDMK_DIR := /usr/share/arduino
AVR_TOOLS_DIR := /usr
ARDUINO_QUIET := 1
BOARD_TAG := uno
TARGET := powerhil
OBJDIR := ../build/uno
USER_LIB_PATH := $(realpath ../lib)
ARDUINO_LIBS := Wire EEPROM powerlink ina219
# The Arduino core's WString.cpp uses DECIMAL_DIG, which gcc-avr 5.4's <float.h> defines for C99
# and later C only, not for C++; the compiler's own __DECIMAL_DIG__ is the same value.
CXXFLAGS += -DDECIMAL_DIG=__DECIMAL_DIG__
# Shared prologue/epilogue code: less flash for a few cycles a call (platformio.ini sets it too).
CPPFLAGS += -mcall-prologues
include $(ARDMK_DIR)/Arduino.mk
endif
