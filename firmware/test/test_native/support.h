// Helpers of the powerlink host tests: a device with its events and output recorded, and frames
// built and read back (device lines are compact JSON, so a field is found by its key).
#ifndef POWERLINK_TEST_SUPPORT_H
#define POWERLINK_TEST_SUPPORT_H

#if __has_include(<doctest/doctest.h>)
#include <doctest/doctest.h>  // Debian's doctest-dev
#else
#include <doctest.h>  // PlatformIO's doctest package
#endif

#include <cstdint>
#include <string>
#include <vector>

#include "powerlink.h"

namespace test {

// What the device reported, copied out of the callback.
struct Recorded {
  powerlink::EventKind kind;
  uint32_t seq;
  powerlink::Err err;
  powerlink::ResendCause cause;
  std::vector<uint32_t> seqs;
  std::string line;
};

// A device under test: events recorded, output collected, time in ms.
class Rig {
 public:
  explicit Rig(uint16_t boot = 1, uint16_t interval_ms = powerlink::kDefaultIntervalMs,
               uint32_t first_seq = 0);

  powerlink::ObservedDevice device;
  std::vector<Recorded> events;

  // Every byte the device has to send now, split into lines (LF kept).
  std::vector<std::string> take_lines();
  // The seqs of the samples among them.
  std::vector<uint32_t> take_sample_seqs();
  // The last sample among them (fails the test if there is none).
  std::string take_last_sample();
  // Feed text (a whole frame from frame(), or anything) at `ms`.
  void feed(const std::string& text, uint32_t ms);
  // One reading (5 V, 0.25 A, 1.25 W) at `ms`.
  void reading(uint32_t ms);
  // Readings every `step` ms from `from` to `to` (inclusive); returns the seqs sent meanwhile.
  std::vector<uint32_t> run(uint32_t from, uint32_t to, uint32_t step = 10);
  size_t count(powerlink::EventKind kind) const;

 private:
  static void record(void* rig, const powerlink::Event& e);
};

// `body` framed: "*", its CRC in 4 upper-case hex digits, LF.
std::string frame(const std::string& body);
// The body of a device line, after checking its frame (fails the test if it is bad).
std::string body_of(const std::string& line);
// The text of a top-level field's value in a device line ("" if absent): "8", "\"ok\"".
std::string field(const std::string& line, const std::string& key);
bool is_sample(const std::string& line);

}  // namespace test

#endif
