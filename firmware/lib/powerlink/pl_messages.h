// Frames of protocol v1 (docs/protocol.md §1-3): checking and decoding what the host sends,
// writing what the device sends.
#ifndef POWERLINK_PL_MESSAGES_H
#define POWERLINK_PL_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "pl_json.h"
#include "pl_types.h"

namespace powerlink {

// Checks 2-8 of §1.1 on one line (its LF optional, one CR before it ignored). Returns the error
// kind of the first failing check, or Err::None with the body's JSON checked into `body`.
Err check_frame(const char* line, size_t len, JsonBody* body);

enum class HostKind : uint8_t { Command, Nack, Ack };

// A host-to-device message. A command's name and arguments stay in the body (its arguments
// are every key but cmd, seq and boot: the command layer checks them, §2.6).
struct HostMessage {
  HostKind kind;
  uint32_t seq;  // the command's or the ACK's seq
  bool has_boot;
  uint16_t boot;
  uint8_t name_off;
  uint8_t name_len;
  uint8_t nack_count;
  uint32_t nack[kMaxNackSeqs];
};

// Checks 9-12 of §1.1 on a checked body, host to device.
Err decode_host_message(const JsonBody& body, HostMessage* msg);

// The keys host-to-device frames use, by id (JsonBody::key_id with kKeyNames).
enum KeyId : uint8_t { kCmd, kSeq, kBoot, kAck, kNack, kValue, kUv, kOc, kOp, kOtherKey };
extern const char kKeyNames[];

// --- device to host ------------------------------------------------------------------------

// What a device keeps of a closed sample (its seq is its place in the window, its start the
// end of the one before).
struct SampleValues {
  uint32_t ts;
  uint32_t n;
  uint16_t v_mv;
  uint16_t vmin_mv;
  uint16_t vmax_mv;
  int32_t a_100ua;
  int32_t amax_100ua;
  uint32_t w_mw;
  Status status;
};

struct SampleRecord {
  uint32_t seq;
  uint16_t boot;
  uint32_t dt;
  SampleValues values;
};

struct HelloRecord {
  uint16_t boot;
  uint32_t seq;  // oldest seq not yet acknowledged
  bool has_cmd;
  uint32_t last_cmd;
  uint16_t interval_ms;
  bool has_ack;
  uint32_t ack;
};

// {"ack":seq,"result":"ok"} when err is None, else {"nack":seq,"err":name}; seq -1 when
// `unreadable` (a line that could not be decoded).
struct ReplyRecord {
  bool unreadable;
  uint32_t seq;
  Err err;
};

enum class LineKind : uint8_t { None, Sample, Hello, Reply };

struct OutLine {
  LineKind kind;
  union {
    SampleRecord sample;
    HelloRecord hello;
    ReplyRecord reply;
  };
};

// The whole framed line, LF included, into out (kMaxLine bytes); returns its length.
uint8_t render_line(const OutLine& line, char* out);

// The CRC of the line's body and the line's length.
uint16_t line_crc(const OutLine& line, uint8_t* length);

// Bytes [from, from + max) of the line, given its body's CRC: a line can go out in pieces
// without a buffer holding all of it. Returns how many bytes were written.
uint8_t render_part(const OutLine& line, uint16_t crc, uint8_t from, char* out, uint8_t max);

}  // namespace powerlink

#endif
