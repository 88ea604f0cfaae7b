#include "pl_messages.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pl_crc.h"
#include "pl_flash.h"

namespace powerlink {

const char kKeyNames[] PL_FLASH = "cmd\0seq\0boot\0ack\0nack\0value\0uv\0oc\0op";

namespace {

// Names by enum value; Err::None is the empty first one.
const char kErrNames[] PL_FLASH =
    "\0incomplete\0too_long\0bad_byte\0no_crc\0crc_format\0bad_crc\0bad_json\0unknown_message"
    "\0missing_field\0bad_type\0out_of_range\0unknown\0arg\0range\0boot\0stale";
const char kStatusNames[] PL_FLASH = "ok\0uv\0op\0oc\0ovf\0i2c";

const uint32_t kPow10[10] PL_FLASH = {1000000000ul, 100000000ul, 10000000ul, 1000000ul, 100000ul,
                                      10000ul,      1000ul,      100ul,      10ul,      1ul};
const char kHex[] PL_FLASH = "0123456789ABCDEF";

const uint32_t kMax16 = 0xFFFFul;
const uint32_t kMax32 = 0xFFFFFFFFul;

bool hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }
uint8_t hex_value(char c) { return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'A' + 10); }

// An integer field at `at` (-1: absent): missing_field, bad_type (a bool, a fraction, not a
// number), out_of_range.
Err get_int(const JsonBody& body, int16_t at, uint32_t hi, uint32_t* out) {
  if (at < 0) return Err::MissingField;
  JsonNumber v;
  if (!body.number_at(static_cast<uint8_t>(at), 0, &v) || !v.is_int) return Err::BadType;
  if (!v.in_range(0, hi)) return Err::OutOfRange;
  *out = v.value;
  return Err::None;
}

// Writes a line's characters, keeping those in [from, to) and the CRC of the body.
class Writer {
 public:
  Writer(char* out, uint8_t from, uint8_t to, bool crc)
      : pos_(0), from_(from), to_(to), crc_on_(crc), crc_(kCrcInit), out_(out) {}

  void put(char c) {
    if (pos_ >= from_ && pos_ < to_) out_[pos_ - from_] = c;
    if (crc_on_) crc_ = crc16_update(crc_, static_cast<uint8_t>(c));
    ++pos_;
  }
  void text(const char* flash) {
    for (char c; (c = flash_char(flash)) != '\0'; ++flash) put(c);
  }
  // x with at least decimals + 1 digits and a point before the last `decimals`.
  void number(uint32_t x, uint8_t decimals) {
    bool started = false;
    for (uint8_t i = 0; i < 10; ++i) {
      const uint32_t p = flash_u32(&kPow10[i]);
      char d = '0';
      while (x >= p) {
        x -= p;
        ++d;
      }
      const uint8_t place = static_cast<uint8_t>(9 - i);
      if (d != '0' || started || place <= decimals) {
        started = true;
        put(d);
        if (decimals != 0 && place == decimals) put('.');
      }
    }
  }
  void quoted(const char* flash) {
    put('"');
    text(flash);
    put('"');
  }
  // Nothing more is wanted: past the window and no CRC to finish.
  bool done() const { return !crc_on_ && pos_ >= to_; }
  uint8_t pos() const { return pos_; }
  uint16_t crc() const { return crc_; }
  uint8_t written() const {
    uint8_t end = pos_ < to_ ? pos_ : to_;
    return end > from_ ? static_cast<uint8_t>(end - from_) : 0;
  }

 private:
  uint8_t pos_;
  uint8_t from_;
  uint8_t to_;
  bool crc_on_;
  uint16_t crc_;
  char* out_;
};

// A body is a list of fields written from tables in flash: the names, and for each field a
// format (what it is, and its decimals in the low bits) and its offset in the record.
enum Format : uint8_t {
  kDecimals = 0x07,
  kU16 = 0x10,
  kU32 = 0x20,
  kI32 = 0x30,
  kStatusName = 0x40,  // a Status byte
  kErrName = 0x50,     // an Err byte
  kProtocol = 0x60,    // constants: the record is not read
  kFirmware = 0x70,
  kWindowSize = 0x80,
  kOk = 0x90,
};

#define PL_FIELD(format, record, member) \
  static_cast<uint8_t>(format), static_cast<uint8_t>(offsetof(record, member))
const char kSampleKeys[] PL_FLASH = "seq\0boot\0ts\0dt\0v\0a\0w\0vmin\0vmax\0amax\0n\0status";
const uint8_t kSampleFields[] PL_FLASH = {
    PL_FIELD(kU32, SampleRecord, seq),
    PL_FIELD(kU16, SampleRecord, boot),
    PL_FIELD(kU32, SampleRecord, values.ts),
    PL_FIELD(kU32, SampleRecord, dt),
    PL_FIELD(kU16 | 3, SampleRecord, values.v_mv),
    PL_FIELD(kI32 | 4, SampleRecord, values.a_100ua),
    PL_FIELD(kU32 | 3, SampleRecord, values.w_mw),
    PL_FIELD(kU16 | 3, SampleRecord, values.vmin_mv),
    PL_FIELD(kU16 | 3, SampleRecord, values.vmax_mv),
    PL_FIELD(kI32 | 4, SampleRecord, values.amax_100ua),
    PL_FIELD(kU32, SampleRecord, values.n),
    PL_FIELD(kStatusName, SampleRecord, values.status),
};
const char kHelloKeys[] PL_FLASH = "hello\0fw\0boot\0seq\0interval\0win\0cmd\0ack";
const uint8_t kHelloFields[] PL_FLASH = {
    kProtocol, 0, kFirmware, 0,
    PL_FIELD(kU16, HelloRecord, boot),
    PL_FIELD(kU32, HelloRecord, seq),
    PL_FIELD(kU16, HelloRecord, interval_ms),
    kWindowSize, 0,
    PL_FIELD(kU32, HelloRecord, last_cmd),
    PL_FIELD(kU32, HelloRecord, ack),
};
const char kAckKeys[] PL_FLASH = "ack\0result";
const char kNackKeys[] PL_FLASH = "nack\0err";
const uint8_t kAckFields[] PL_FLASH = {PL_FIELD(kU32, ReplyRecord, seq), kOk, 0};
const uint8_t kNackFields[] PL_FLASH = {PL_FIELD(kU32, ReplyRecord, seq),
                                        PL_FIELD(kErrName, ReplyRecord, err)};
#undef PL_FIELD
const char kProtocolName[] PL_FLASH = "powerhil";
const char kFirmwareVersion[] PL_FLASH = POWERLINK_FW_VERSION;
const char kOkText[] PL_FLASH = "ok";

// `minus_one`: a bit per field written as -1 whatever its value (a hello's cmd before any
// command, the seq of a reply to an unreadable line).
void write_fields(Writer& w, const char* keys, const uint8_t* fields, const void* record,
                  uint8_t count, uint8_t minus_one) {
  for (uint8_t i = 0; i < count && !w.done(); ++i) {
    w.put(i == 0 ? '{' : ',');
    w.quoted(keys);
    while (flash_char(keys++) != '\0') {
    }
    w.put(':');
    const uint8_t format = flash_byte(fields++);
    const uint8_t* at = static_cast<const uint8_t*>(record) + flash_byte(fields++);
    const uint8_t kind = format & 0xF0;
    uint32_t value = 0;
    memcpy(&value, at, kind == kU16 ? 2 : kind <= kI32 ? 4 : 1);  // little-endian, as AVR and x86
    if ((minus_one >> i) & 1u) {
      w.put('-');
      w.put('1');
    } else if (kind == kWindowSize) {
      w.number(kWindow, 0);
    } else if (kind >= kStatusName) {
      w.quoted(kind == kStatusName ? status_name(static_cast<Status>(value))
               : kind == kErrName  ? err_name(static_cast<Err>(value))
               : kind == kProtocol ? kProtocolName
               : kind == kFirmware ? kFirmwareVersion
                                   : kOkText);
    } else {
      if (kind == kI32 && static_cast<int32_t>(value) < 0) {
        w.put('-');
        value = 0u - value;
      }
      w.number(value, format & kDecimals);
    }
  }
  w.put('}');
}

void write_body(const OutLine& line, Writer& w) {
  if (line.kind == LineKind::Sample) {
    write_fields(w, kSampleKeys, kSampleFields, &line.sample, 12, 0);
  } else if (line.kind == LineKind::Hello) {
    const HelloRecord& h = line.hello;
    write_fields(w, kHelloKeys, kHelloFields, &h, h.has_ack ? 8 : 7, h.has_cmd ? 0 : 1u << 6);
  } else {
    const ReplyRecord& r = line.reply;
    const bool ok = r.err == Err::None;
    write_fields(w, ok ? kAckKeys : kNackKeys, ok ? kAckFields : kNackFields, &r, 2,
                 r.unreadable ? 1 : 0);
  }
}

void write_tail(uint16_t crc, Writer& w) {
  w.put('*');
  for (int8_t shift = 12; shift >= 0; shift = static_cast<int8_t>(shift - 4)) {
    w.put(flash_char(kHex + ((crc >> shift) & 0xF)));
  }
  w.put('\n');
}

}  // namespace

const char* err_name(Err e) { return flash_nth(kErrNames, static_cast<uint8_t>(e)); }
const char* status_name(Status s) { return flash_nth(kStatusNames, static_cast<uint8_t>(s)); }

Err check_frame(const char* line, size_t len, JsonBody* body) {
  const bool has_lf = len > 0 && line[len - 1] == '\n';
  if (len + (has_lf ? 0 : 1) > kMaxLine) return Err::TooLong;
  if (has_lf) --len;
  if (len > 0 && line[len - 1] == '\r') --len;
  uint8_t star = 0xFF;
  for (uint8_t i = 0; i < len; ++i) {
    const char c = line[i];
    if (c < 0x20 || c > 0x7E) return Err::BadByte;
    if (c == '*' && star == 0xFF) star = i;
  }
  if (star == 0xFF) return Err::NoCrc;
  if (len - star != 5) return Err::CrcFormat;
  uint16_t crc = 0;
  for (uint8_t i = static_cast<uint8_t>(star + 1); i < len; ++i) {
    if (!hex_digit(line[i])) return Err::CrcFormat;
    crc = static_cast<uint16_t>((crc << 4) | hex_value(line[i]));
  }
  if (crc16(line, star) != crc) return Err::BadCrc;
  for (uint8_t i = 0; i < star; ++i) {
    if (line[i] == '\\') return Err::BadJson;
  }
  return body->parse(line, star);
}

Err decode_host_message(const JsonBody& body, HostMessage* msg) {
  int16_t at[kNack + 1];  // where the values of cmd .. nack are; -1: absent
  for (uint8_t id = 0; id <= kNack; ++id) at[id] = -1;
  for (uint8_t i = 0; i < body.key_count(); ++i) {
    const uint8_t id = body.key_id(i, kKeyNames, kNack + 1);
    if (id <= kNack) at[id] = body.value_of_key(i);
  }
  uint32_t boot = 0;
  Err err;
  if (at[kCmd] >= 0) {
    msg->kind = HostKind::Command;
    const uint8_t name = static_cast<uint8_t>(at[kCmd]);
    if (body.type_at(name) != JsonType::String) return Err::BadType;
    msg->name_off = body.string_at(name, &msg->name_len);
    if (msg->name_len == 0 || msg->name_len > kMaxStringLen) return Err::OutOfRange;
    if ((err = get_int(body, at[kSeq], kMax32, &msg->seq)) != Err::None) return err;
    msg->has_boot = at[kBoot] >= 0;
    if (msg->has_boot && (err = get_int(body, at[kBoot], kMax16, &boot)) != Err::None) return err;
  } else if (at[kNack] >= 0) {
    msg->kind = HostKind::Nack;
    const uint8_t list = static_cast<uint8_t>(at[kNack]);
    if (body.type_at(list) != JsonType::Array) return Err::BadType;
    uint8_t pos = 0;
    uint8_t count = 0;
    bool in_range = true;
    JsonNumber s;
    while (body.array_int(list, &pos, &s)) {
      in_range = in_range && s.in_range(0, kMax32);
      if (count < kMaxNackSeqs) msg->nack[count] = s.value;
      if (count <= kMaxNackSeqs) ++count;
    }
    if (count == 0 || count > kMaxNackSeqs || !in_range) return Err::OutOfRange;
    msg->nack_count = count;
    if ((err = get_int(body, at[kBoot], kMax16, &boot)) != Err::None) return err;
  } else if (at[kAck] >= 0) {
    msg->kind = HostKind::Ack;
    if ((err = get_int(body, at[kAck], kMax32, &msg->seq)) != Err::None) return err;
    if ((err = get_int(body, at[kBoot], kMax16, &boot)) != Err::None) return err;
  } else {
    return Err::UnknownMessage;
  }
  msg->boot = static_cast<uint16_t>(boot);
  return Err::None;
}

uint8_t render_line(const OutLine& line, char* out) {
  uint8_t length;
  const uint16_t crc = line_crc(line, &length);
  return render_part(line, crc, 0, out, length);
}

uint16_t line_crc(const OutLine& line, uint8_t* length) {
  Writer w(0, 0, 0, true);
  write_body(line, w);
  *length = static_cast<uint8_t>(w.pos() + 6);  // '*', 4 hex digits, LF
  return w.crc();
}

uint8_t render_part(const OutLine& line, uint16_t crc, uint8_t from, char* out, uint8_t max) {
  const uint16_t to = static_cast<uint16_t>(from) + max;
  Writer w(out, from, to > 255 ? 255 : static_cast<uint8_t>(to), false);
  write_body(line, w);
  if (!w.done()) write_tail(crc, w);
  return w.written();
}

}  // namespace powerlink
