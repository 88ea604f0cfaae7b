// libFuzzer on the firmware's device core (firmware/lib/powerlink), driven as
// firmware/src/main.cpp's loop drives it: each turn reads what has arrived in pieces of at most
// 16 bytes, adds a reading, runs the timers and sends as much of the line going out as the
// serial transmit buffer has room for. Built with AddressSanitizer and UBSan
// (tests/fuzz/fuzz.mk); besides memory and undefined behaviour it checks that every line the
// device sends is a frame of protocol v1 and that its window never overflows.
//
// An input is a 4-byte header and the bytes from the host (tests/fuzz/seeds.py writes the seed
// corpus). The header seeds the choices that are not bytes: the boot number, the first seq and
// the start time (near the 32-bit wraps of both), how many bytes each turn reads, how much time
// passes, the readings, the room to send. When its first byte is odd, every line with a `*`
// gets the right CRC for what stands before it, so a mutated frame reaches the JSON and command
// checks instead of stopping at bad_crc.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cstdio>
#include <vector>

#include "powerlink.h"

namespace {

using powerlink::Err;
using powerlink::Event;
using powerlink::EventKind;
using powerlink::ObservedDevice;
using powerlink::Readings;

const size_t kHeader = 4;
const uint8_t kChunk = 63;     // main.cpp: at most a serial transmit buffer's room at once
const uint8_t kMinChunk = 40;  // main.cpp: a line goes in pieces no smaller, but its last
const size_t kReceivePiece = 16;  // main.cpp: bytes read into the core at a time
// Milliseconds between turns: none, a loop pass, the timers' edges, a long silence.
const uint32_t kSteps[] = {0, 0, 1, 2, 9, 10, 20, 299, 300, 499, 500, 501, 1000, 2000, 60000};
const uint32_t kStarts[] = {0, 1000, 0xFFFFF000u};  // millis() wraps at 2^32
const uint32_t kFirstSeqs[] = {0, 0xFFFFFFF8u, 0x7FFFFFFEu};

void fail(const char* what) {
  fprintf(stderr, "fuzz_device: %s\n", what);
  abort();
}

void expect(bool ok, const char* what) {
  if (!ok) fail(what);
}

// xorshift32: the choices an input's header makes, the same on every run.
struct Choices {
  uint32_t state;
  uint32_t next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
  uint32_t below(uint32_t n) { return next() % n; }
};

bool is_hex_upper(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// A line the device sent: printable, `<body>*<CRC>\n` with the body's CRC, within the maximum.
void check_line(const std::vector<char>& line) {
  const size_t len = line.size();
  expect(len >= 7 && len <= powerlink::kMaxLine, "a line's length");
  expect(line[len - 1] == '\n', "a line's end");
  for (size_t i = 0; i + 1 < len; ++i) {
    expect(line[i] >= 0x20 && line[i] <= 0x7E, "a byte outside printable ASCII");
  }
  const size_t star = len - 6;
  expect(line[star] == '*', "no '*' before the CRC");
  expect(memchr(line.data(), '*', star) == nullptr, "a '*' in the body");
  expect(line[0] == '{' && line[star - 1] == '}', "a body that is not an object");
  unsigned crc = 0;
  for (size_t i = star + 1; i < star + 5; ++i) {
    expect(is_hex_upper(line[i]), "a CRC digit");
    crc = crc * 16 + static_cast<unsigned>(line[i] <= '9' ? line[i] - '0' : line[i] - 'A' + 10);
  }
  expect(crc == powerlink::crc16(line.data(), star), "a wrong CRC");
}

void on_event(void*, const Event& e) {
  switch (e.kind) {
    case EventKind::CorruptFrame:
      expect(e.err >= Err::Incomplete && e.err <= Err::OutOfRange, "a corrupt line's kind");
      break;
    case EventKind::CommandExecuted:
      expect(e.err == Err::None || (e.err >= Err::Unknown && e.err <= Err::Range),
             "an executed command's reply");
      break;
    case EventKind::Resent:
      expect(e.count >= 1 && e.count <= powerlink::kWindow, "a resend's size");
      break;
    case EventKind::SampleClosed:
      break;
  }
}

// Each line that holds a `*`: its body, `*`, the body's CRC (the LF stays).
std::vector<char> with_crcs(const char* data, size_t size) {
  std::vector<char> out;
  size_t start = 0;
  while (start < size) {
    const char* nl = static_cast<const char*>(memchr(data + start, '\n', size - start));
    const size_t end = nl == nullptr ? size : static_cast<size_t>(nl - data);
    const char* star = static_cast<const char*>(memchr(data + start, '*', end - start));
    if (nl != nullptr && star != nullptr) {
      const size_t body = static_cast<size_t>(star - (data + start));
      out.insert(out.end(), data + start, star);
      char crc[8];
      snprintf(crc, sizeof crc, "*%04X", powerlink::crc16(data + start, body));
      out.insert(out.end(), crc, crc + 5);
    } else {
      out.insert(out.end(), data + start, data + end);
    }
    if (nl != nullptr) out.push_back('\n');
    start = end + 1;
  }
  return out;
}

// What goes out, a line at a time, checked as each ends.
struct Wire {
  std::vector<char> line;
  void take(const char* data, uint8_t n) {
    for (uint8_t i = 0; i < n; ++i) {
      line.push_back(data[i]);
      expect(line.size() <= powerlink::kMaxLine, "a line longer than the maximum");
      if (data[i] == '\n') {
        check_line(line);
        line.clear();
      }
    }
  }
};

// main.cpp's transmit(): as much of the line going out as `room` allows.
void transmit(ObservedDevice& link, Wire& wire, uint8_t room) {
  const uint8_t left = link.line_bytes();
  expect(left <= powerlink::kMaxLine, "more of a line left than a line holds");
  uint8_t n = room < kChunk ? room : kChunk;
  if (n > left) n = left;
  if (n == 0 || (n < left && n < kMinChunk)) return;
  char chunk[kChunk];
  const uint8_t got = link.read(chunk, n);
  expect(got == n, "read gave less than the line had left");
  wire.take(chunk, got);
}

Readings reading(Choices& c) {
  switch (c.below(8)) {
    case 0:
      return Readings::failed();
    case 1:
      return Readings::one(static_cast<uint16_t>(c.next()), static_cast<int32_t>(c.next()),
                           c.next(), powerlink::Fault::Ovf);
    case 2: {  // a batch at the extremes
      Readings r = Readings::one(32767, -327680, 1100000);
      r.n = 0xFFFFFFFFu;
      r.vmax_mv = 0xFFFF;
      r.amax_100ua = 0x7FFFFFFF;
      r.wmax_mw = 0xFFFFFFFFu;
      return r;
    }
    default:
      return Readings::one(5000, 2500, 12500);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t seed = 0x9E3779B9u;
  for (size_t i = 0; i < kHeader && i < size; ++i) seed = seed * 31 + data[i];
  Choices c = {seed == 0 ? 1u : seed};
  const char* bytes = reinterpret_cast<const char*>(data) + (size < kHeader ? size : kHeader);
  size_t len = size < kHeader ? 0 : size - kHeader;
  std::vector<char> repaired;
  if (size > 0 && (data[0] & 1) != 0) {
    repaired = with_crcs(bytes, len);
    bytes = repaired.data();
    len = repaired.size();
  }

  static ObservedDevice link;  // as the firmware's: one for the program's life, begun anew
  link.events().hook = on_event;
  uint32_t now = kStarts[c.below(3)];
  powerlink::Settings settings;
  if (c.below(2) == 0) settings.interval_ms = powerlink::kIntervalMinMs;
  link.begin(static_cast<uint16_t>(c.next()), settings, kFirstSeqs[c.below(3)]);
  Wire wire;

  size_t pos = 0;
  int rest = 0;  // turns after the input is read: the timers and what is queued go out
  while (pos < len || rest < 64) {
    if (pos >= len) ++rest;
    now += kSteps[c.below(sizeof kSteps / sizeof kSteps[0])];
    size_t take = c.below(3) == 0 ? c.below(200) : c.below(24);
    if (take > len - pos) take = len - pos;
    for (size_t done = 0; done < take; done += kReceivePiece) {
      const size_t piece = take - done < kReceivePiece ? take - done : kReceivePiece;
      link.receive(bytes + pos + done, piece, now);
    }
    pos += take;
    if (c.below(2) == 0) link.add(reading(c), now);
    link.tick(now);
    transmit(link, wire, static_cast<uint8_t>(c.below(2) == 0 ? 64 : c.below(64)));
    expect(link.window_count() <= powerlink::kWindow, "a window over its size");
    uint32_t at;
    if (c.below(4) == 0 && link.next_deadline(&at) && powerlink::seq_diff(at, now) > 0) {
      now = at;  // the loop idles until the link's next timer, as a fast loop reaches it
      link.tick(now);
    }
  }
  while (link.line_bytes() > 0) transmit(link, wire, 64);
  expect(wire.line.empty(), "a line left unfinished");
  return 0;
}
