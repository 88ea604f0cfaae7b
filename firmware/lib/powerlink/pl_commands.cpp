#include "pl_commands.h"

#include <stddef.h>
#include <string.h>

#include "pl_flash.h"

namespace powerlink {

namespace {

enum Command : uint8_t { kHello, kPing, kSetInterval, kSetThreshold, kSetAvg, kUnknown };
const char kCommandNames[] PL_FLASH = "hello\0ping\0set_interval\0set_threshold\0set_avg";

// The arguments each command takes, a bit per argument key (value, uv, oc, op from kValue on).
// set_threshold takes any non-empty subset, the others all of theirs.
const uint8_t kTakes[] PL_FLASH = {0, 0, 1u << (kValue - kValue),
                                   (1u << (kUv - kValue)) | (1u << (kOc - kValue)) |
                                       (1u << (kOp - kValue)),
                                   1u << (kValue - kValue)};

// An argument: read at 10^scale (1 mV, 0.1 mA, 1 mW for the thresholds: finer digits are
// dropped), in lo..hi, stored as `size` bytes at `offset` in Settings.
struct ArgSpec {
  uint8_t scale;
  uint8_t size;
  uint8_t offset;
  uint32_t lo;
  uint32_t hi;
};
const ArgSpec kArgSpecs[] PL_FLASH = {
    {0, 2, offsetof(Settings, interval_ms), kIntervalMinMs, kIntervalMaxMs},  // set_interval
    {0, 1, offsetof(Settings, avg), 1, 128},                                  // set_avg
    {3, 2, offsetof(Settings, uv_mv), 0, static_cast<uint32_t>(kVoltsMaxMv)},
    {4, 4, offsetof(Settings, oc_100ua), 0, static_cast<uint32_t>(kAmpsMax)},
    {3, 4, offsetof(Settings, op_mw), 0, static_cast<uint32_t>(kWattsMaxMw)},
};

Command command_of(const JsonBody& body, const HostMessage& cmd) {
  uint8_t c = kHello;
  while (c < kUnknown &&
         !body.text_equals(cmd.name_off, cmd.name_len, flash_nth(kCommandNames, c))) {
    ++c;
  }
  return static_cast<Command>(c);
}

}  // namespace

Status Settings::status_of(uint16_t v_mv, int32_t a_100ua, uint32_t w_mw) const {
  if (oc_100ua != 0 && a_100ua > static_cast<int32_t>(oc_100ua)) return Status::Oc;
  if (op_mw != 0 && w_mw > op_mw) return Status::Op;
  if (uv_mv != 0 && v_mv < uv_mv) return Status::Uv;
  return Status::Ok;
}

bool is_hello(const JsonBody& body, const HostMessage& cmd) {
  return command_of(body, cmd) == kHello;
}

Err run_command(const JsonBody& body, const HostMessage& cmd, Settings* settings) {
  const Command which = command_of(body, cmd);
  if (which == kUnknown) return Err::Unknown;
  const uint8_t takes = flash_byte(&kTakes[which]);
  bool arg = false;
  bool range = false;
  uint8_t given = 0;
  Settings next = *settings;
  for (uint8_t key = 0; key < body.key_count(); ++key) {
    const uint8_t id = body.key_id(key, kKeyNames, kOtherKey);
    if (id <= kBoot) continue;  // the frame's own keys; every other key is an argument
    const bool argument = id >= kValue && id < kOtherKey;
    const uint8_t bit = static_cast<uint8_t>(argument ? 1u << (id - kValue) : 0);
    given |= bit;
    if ((takes & bit) == 0) {
      arg = true;  // an argument this command does not take
      continue;
    }
    ArgSpec spec;
    flash_copy(&spec, &kArgSpecs[id == kValue ? (which == kSetAvg ? 1 : 0) : id - kValue + 1],
               sizeof spec);
    JsonNumber x;
    if (!body.number_at(static_cast<uint8_t>(body.value_of_key(key)), spec.scale, &x) ||
               (spec.scale == 0 && !x.is_int)) {
      arg = true;  // not a number (a bool is not), or a fraction where an integer is due
    } else if (!x.in_range(spec.lo, spec.hi) || (which == kSetAvg && (x.value & (x.value - 1)))) {
      range = true;  // set_avg also wants a power of two
    } else {
      memcpy(reinterpret_cast<uint8_t*>(&next) + spec.offset, &x.value, spec.size);  // LE
    }
  }
  if (which == kSetThreshold ? given == 0 : given != takes) arg = true;  // a missing argument
  if (arg) return Err::Arg;
  if (range) return Err::Range;
  *settings = next;
  return Err::None;
}

}  // namespace powerlink
