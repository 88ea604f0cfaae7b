// powerlink-device: the powerlink core (firmware/lib/powerlink) on the host, driven over
// stdin/stdout one line at a time, so Python can run the real device core against HostLink
// through the fault injector (tests/cpp_device.py) with simulated time and a scripted supply.
//
// Requests (times are device ms since boot; bytes are hex, "-" for none):
//   begin BOOT FIRST_SEQ INTERVAL_MS UV_MV OC_100UA OP_MW AVG   boot the core with these settings
//   add MS N V_MV A_100UA W_MW VMIN_MV VMAX_MV AMAX_100UA WMAX_MW FAULT
//                       readings (FAULT: - ovf i2c)
//   feed MS HEX         bytes from the host
//   tick MS             run the timers
//   read                -> "out HEX": every byte the core has to send, then "end ..."
//   settings            -> "settings INTERVAL_MS UV_MV OC_100UA OP_MW AVG"
//   limits              -> "limits NAME=VALUE ...": the protocol constants the core uses
// Every request is answered by zero or more event lines and then
//   end DEADLINE_MS|- PENDING      when tick is next due, and 1 if output is waiting
// Event lines:
//   closed SEQ LINE_HEX            a sample closed: its frame
//   executed SEQ ERR|ok LINE_HEX   a command executed (or refused): the line it came in
//   resent nack|timeout SEQ...     samples queued again
//   corrupt KIND LINE_HEX          a line that could not be decoded
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "powerlink.h"

namespace {

using powerlink::Err;
using powerlink::Event;
using powerlink::EventKind;
using powerlink::ObservedDevice;

ObservedDevice device;

std::string hex(const char* data, size_t len) {
  if (len == 0) return "-";
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len; ++i) {
    const auto b = static_cast<unsigned char>(data[i]);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

bool unhex(const std::string& text, std::string* out) {
  if (text == "-") return true;
  if (text.size() % 2 != 0) return false;
  for (size_t i = 0; i < text.size(); i += 2) {
    unsigned value = 0;
    if (std::sscanf(text.c_str() + i, "%2x", &value) != 1) return false;
    *out += static_cast<char>(value);
  }
  return true;
}

std::string err_text(Err e) {
  if (e == Err::None) return "ok";
  const char* name = powerlink::err_name(e);
  return name;
}

void on_event(void*, const Event& e) {
  switch (e.kind) {
    case EventKind::SampleClosed: {
      char line[powerlink::kMaxLine];
      const uint8_t len = device.sample_line(e.seq, line);
      std::printf("closed %lu %s\n", static_cast<unsigned long>(e.seq), hex(line, len).c_str());
      break;
    }
    case EventKind::CommandExecuted:
      std::printf("executed %lu %s %s\n", static_cast<unsigned long>(e.seq),
                  err_text(e.err).c_str(), hex(e.line, e.len).c_str());
      break;
    case EventKind::Resent:
      std::printf("resent %s", e.cause == powerlink::ResendCause::Nack ? "nack" : "timeout");
      for (uint8_t i = 0; i < e.count; ++i) {
        std::printf(" %lu", static_cast<unsigned long>(e.seqs[i]));
      }
      std::printf("\n");
      break;
    case EventKind::CorruptFrame:
      std::printf("corrupt %s %s\n", err_text(e.err).c_str(), hex(e.line, e.len).c_str());
      break;
  }
}

void end() {
  uint32_t at = 0;
  if (device.next_deadline(&at)) {
    std::printf("end %lu %d\n", static_cast<unsigned long>(at), device.has_output() ? 1 : 0);
  } else {
    std::printf("end - %d\n", device.has_output() ? 1 : 0);
  }
  std::fflush(stdout);
}

powerlink::Fault fault_of(const std::string& word) {
  if (word == "ovf") return powerlink::Fault::Ovf;
  if (word == "i2c") return powerlink::Fault::I2c;
  return powerlink::Fault::None;
}

// Runs one request; false if it is malformed.
bool run(const std::string& request) {
  std::istringstream in(request);
  std::string verb;
  in >> verb;
  if (verb == "begin") {
    unsigned long boot, first_seq, interval, uv, oc, op, avg;
    if (!(in >> boot >> first_seq >> interval >> uv >> oc >> op >> avg)) return false;
    powerlink::Settings settings;
    settings.interval_ms = static_cast<uint16_t>(interval);
    settings.uv_mv = static_cast<uint16_t>(uv);
    settings.oc_100ua = static_cast<uint32_t>(oc);
    settings.op_mw = static_cast<uint32_t>(op);
    settings.avg = static_cast<uint8_t>(avg);
    device.events().hook = on_event;
    device.begin(static_cast<uint16_t>(boot), settings, static_cast<uint32_t>(first_seq));
  } else if (verb == "add") {
    unsigned long ms, n, v, w, vmin, vmax, wmax;
    long a, amax;
    std::string fault;
    if (!(in >> ms >> n >> v >> a >> w >> vmin >> vmax >> amax >> wmax >> fault)) return false;
    powerlink::Readings r;
    r.n = static_cast<uint32_t>(n);
    r.v_mv = static_cast<uint16_t>(v);
    r.a_100ua = static_cast<int32_t>(a);
    r.w_mw = static_cast<uint32_t>(w);
    r.vmin_mv = static_cast<uint16_t>(vmin);
    r.vmax_mv = static_cast<uint16_t>(vmax);
    r.amax_100ua = static_cast<int32_t>(amax);
    r.wmax_mw = static_cast<uint32_t>(wmax);
    r.fault = fault_of(fault);
    device.add(r, static_cast<uint32_t>(ms));
  } else if (verb == "feed") {
    unsigned long ms;
    std::string text, data;
    if (!(in >> ms >> text) || !unhex(text, &data)) return false;
    device.receive(data.data(), data.size(), static_cast<uint32_t>(ms));
  } else if (verb == "tick") {
    unsigned long ms;
    if (!(in >> ms)) return false;
    device.tick(static_cast<uint32_t>(ms));
  } else if (verb == "read") {
    std::string out;
    char chunk[64];
    for (uint8_t n; (n = device.read(chunk, sizeof chunk)) > 0;) out.append(chunk, n);
    std::printf("out %s\n", hex(out.data(), out.size()).c_str());
  } else if (verb == "settings") {
    const powerlink::Settings& s = device.settings();
    std::printf("settings %u %u %lu %lu %u\n", s.interval_ms, s.uv_mv,
                static_cast<unsigned long>(s.oc_100ua), static_cast<unsigned long>(s.op_mw), s.avg);
  } else if (verb == "limits") {
    std::printf(
        "limits fw=%s max_line=%u window=%u max_nack=%u interval_min=%u interval_max=%u "
        "interval_default=%u avg_default=%u rto_ms=%u rto_max_ms=%u line_idle_ms=%u\n",
        POWERLINK_FW_VERSION, powerlink::kMaxLine, powerlink::kWindow, powerlink::kMaxNackSeqs,
        powerlink::kIntervalMinMs, powerlink::kIntervalMaxMs, powerlink::kDefaultIntervalMs,
        powerlink::kDefaultAvg, powerlink::kRtoMs, powerlink::kRtoMaxMs, powerlink::kLineIdleMs);
  } else {
    return false;
  }
  return true;
}

}  // namespace

int main() {
  device.begin(0);
  std::string request;
  while (std::getline(std::cin, request)) {
    if (request == "quit") break;
    if (!run(request)) {
      std::printf("error %s\n", request.c_str());
      std::fflush(stdout);
      return 2;
    }
    end();
  }
  return 0;
}
