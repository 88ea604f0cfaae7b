// Protocol v1 constants, codes and settings (docs/protocol.md; the Python side keeps them in
// harness/link/fields.py and the cross-check test compares the two).
#ifndef POWERLINK_PL_TYPES_H
#define POWERLINK_PL_TYPES_H

#include <stddef.h>
#include <stdint.h>

// The firmware version a hello carries (1..16 characters).
#define POWERLINK_FW_VERSION "1.0.0"

namespace powerlink {

const uint8_t kMaxLine = 192;          // bytes of a line, LF included
const uint8_t kWindow = 8;             // samples sent and not yet acknowledged
const uint8_t kMaxNackSeqs = 4;        // seqs one NACK may carry
const uint16_t kIntervalMinMs = 10;    // set_interval range
const uint16_t kIntervalMaxMs = 60000;
const uint16_t kDefaultIntervalMs = 1000;
const uint8_t kDefaultAvg = 1;
const uint16_t kRtoMs = 300;           // device retransmit timeout, doubled per timeout...
const uint16_t kRtoMaxMs = 2000;       // ...up to this
const uint16_t kLineIdleMs = 500;      // an unfinished line idle this long is dropped
const uint8_t kMaxStringLen = 16;      // cmd, fw and err strings: 1..16 characters

// Wire ranges in the device's integer units: mV, 0.1 mA, mW.
const int32_t kVoltsMaxMv = 32768;
const int32_t kAmpsMax = 327680;
const int32_t kWattsMaxMw = 1100000;

// The error kind of a line (docs/protocol.md §1.1, in check order) or a command error code
// (§7). Its name is what a NACK carries in "err".
enum class Err : uint8_t {
  None = 0,
  Incomplete,
  TooLong,
  BadByte,
  NoCrc,
  CrcFormat,
  BadCrc,
  BadJson,
  UnknownMessage,
  MissingField,
  BadType,
  OutOfRange,
  Unknown,
  Arg,
  Range,
  Boot,
  Stale,
};

// Sample status, least to most severe (§4).
enum class Status : uint8_t { Ok = 0, Uv, Op, Oc, Ovf, I2c };

// What went wrong with a reading, if anything.
enum class Fault : uint8_t { None = 0, Ovf, I2c };

// The protocol name of an error kind / code, or of a status; the text lives in flash.
const char* err_name(Err e);
const char* status_name(Status s);

// What commands change. Thresholds are kept at the wire's steps; 0 is off.
struct Settings {
  uint16_t interval_ms;
  uint16_t uv_mv;
  uint32_t oc_100ua;
  uint32_t op_mw;
  uint8_t avg;

  Settings()
      : interval_ms(kDefaultIntervalMs), uv_mv(0), oc_100ua(0), op_mw(0), avg(kDefaultAvg) {}

  // The status one reading (or a batch's extremes) earns against the thresholds.
  Status status_of(uint16_t v_mv, int32_t a_100ua, uint32_t w_mw) const;
};

// Readings taken since the last call, aggregated: n = 1 is a single reading; n = 0 with
// fault I2c is a failed read. Units: mV, 0.1 mA, mW (the INA219's steps at 0.1 ohm and 3.2 A).
struct Readings {
  uint32_t n;
  uint16_t v_mv;
  int32_t a_100ua;
  uint32_t w_mw;
  uint16_t vmin_mv;
  uint16_t vmax_mv;
  int32_t amax_100ua;
  uint32_t wmax_mw;
  Fault fault;

  static Readings one(uint16_t v_mv, int32_t a_100ua, uint32_t w_mw, Fault fault = Fault::None) {
    Readings r;
    r.n = 1;
    r.v_mv = r.vmin_mv = r.vmax_mv = v_mv;
    r.a_100ua = r.amax_100ua = a_100ua;
    r.w_mw = r.wmax_mw = w_mw;
    r.fault = fault;
    return r;
  }

  static Readings failed() {
    Readings r = one(0, 0, 0, Fault::I2c);
    r.n = 0;
    return r;
  }
};

// Serial-number arithmetic on 32-bit seqs: a - b as a signed distance.
inline int32_t seq_diff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

}  // namespace powerlink

#endif
