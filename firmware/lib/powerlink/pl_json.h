// The JSON of a frame body, checked as docs/protocol.md §1.1 checks 7 and 8 (what Python's
// json module accepts, minus NaN/Infinity, duplicate keys and escapes), without copying it:
// the body stays in the caller's buffer and values are read from it on demand.
#ifndef POWERLINK_PL_JSON_H
#define POWERLINK_PL_JSON_H

#include <stdint.h>

#include "pl_types.h"

namespace powerlink {

enum class JsonType : uint8_t { String, Number, True, False, Null, Array, Object };

// A number as a fixed-point value: floor(|x| * 10^scale) in `value`, exactly, with `sticky`
// set when digits finer than that were not zero and `overflow` when it passed 2^32 - 1.
struct JsonNumber {
  bool is_int;  // written without fraction or exponent: a JSON integer
  bool neg;
  bool overflow;
  bool sticky;
  uint32_t value;

  bool is_zero() const { return !overflow && !sticky && value == 0; }
  // lo <= x <= hi, exactly (as values at this scale).
  bool in_range(uint32_t lo, uint32_t hi) const {
    if (neg) return lo == 0 && is_zero();
    if (overflow || value > hi || (value == hi && sticky)) return false;
    return value >= lo;
  }
};

class JsonBody {
 public:
  static const uint8_t kMaxKeys = kMaxLine / 4;  // a member takes at least 4 bytes: "":0

  // Check the body of a frame. Returns Err::None, Err::BadJson (syntax, not one object,
  // duplicate key, NaN/Infinity, leading zero, a backslash) or Err::BadType (a nested object,
  // or an array holding anything but integers).
  Err parse(const char* text, uint8_t len);

  // Offset of the value of a top-level key (flash string), or -1 if absent.
  int16_t find(const char* flash_key) const;
  uint8_t key_count() const;                 // top-level keys
  uint8_t key_at(uint8_t i, uint8_t* len) const;  // offset and length of the i-th key's name
  int16_t value_of_key(uint8_t i) const;     // offset of the i-th key's value
  bool key_is(uint8_t i, const char* flash_key) const;
  // The index of the i-th key's name in a flash list of names ("a\0b\0..."); the count of
  // names if it is none of them.
  uint8_t key_id(uint8_t i, const char* flash_names, uint8_t count) const;

  JsonType type_at(uint8_t off) const;
  // The number at off (false if the value is not a number), at 10^scale.
  bool number_at(uint8_t off, uint8_t scale, JsonNumber* out) const;
  uint8_t string_at(uint8_t off, uint8_t* len) const;  // offset and length of the characters
  uint8_t value_len(uint8_t off) const;              // bytes of the value's text

  // Iterate an array of integers: start with pos = 0; returns false at its end.
  bool array_int(uint8_t off, uint8_t* pos, JsonNumber* out) const;

  const char* text() const { return text_; }
  bool text_equals(uint8_t off, uint8_t len, const char* flash) const;

 private:
  struct Key {
    uint8_t off;
    uint8_t len;
    uint8_t depth;
  };
  uint8_t skip_ws(uint8_t i) const;
  uint8_t scan_number(uint8_t i, uint8_t scale, JsonNumber* out) const;

  const char* text_;
  uint8_t len_;
  uint8_t nkeys_;
  Key keys_[kMaxKeys];
};

}  // namespace powerlink

#endif
