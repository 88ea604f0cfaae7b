#include "pl_json.h"

#include "pl_flash.h"

namespace powerlink {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Which open containers are arrays, by depth (1 = the top-level object).
class Nesting {
 public:
  Nesting() {
    for (uint8_t i = 0; i < sizeof bits_; ++i) bits_[i] = 0;
  }
  void set(uint8_t depth, bool array) {
    uint8_t mask = static_cast<uint8_t>(1u << (depth & 7));
    if (array) {
      bits_[depth >> 3] |= mask;
    } else {
      bits_[depth >> 3] &= static_cast<uint8_t>(~mask);
    }
  }
  bool array(uint8_t depth) const { return (bits_[depth >> 3] >> (depth & 7)) & 1u; }

 private:
  uint8_t bits_[kMaxLine / 8 + 1];
};

const char kTrue[] PL_FLASH = "true";
const char kFalse[] PL_FLASH = "false";
const char kNull[] PL_FLASH = "null";

}  // namespace

uint8_t JsonBody::skip_ws(uint8_t i) const {
  while (i < len_ && is_ws(text_[i])) ++i;
  return i;
}

// The end of the JSON number starting at i, or i itself if none starts there; with `out`, also
// its value at 10^scale (see JsonNumber).
uint8_t JsonBody::scan_number(uint8_t i, uint8_t scale, JsonNumber* out) const {
  uint8_t j = i;
  const bool neg = j < len_ && text_[j] == '-';
  if (neg) ++j;
  const uint8_t int_start = j;
  while (j < len_ && is_digit(text_[j])) ++j;
  const uint8_t int_digits = static_cast<uint8_t>(j - int_start);
  if (int_digits == 0 || (int_digits > 1 && text_[int_start] == '0')) return i;  // leading zero
  uint8_t frac_start = j;
  uint8_t frac_end = j;
  if (j < len_ && text_[j] == '.') {
    frac_start = ++j;
    while (j < len_ && is_digit(text_[j])) ++j;
    frac_end = j;
    if (frac_end == frac_start) return i;
  }
  int16_t exp = 0;
  const bool has_exp = j < len_ && (text_[j] == 'e' || text_[j] == 'E');
  if (has_exp) {
    const bool exp_neg = ++j < len_ && text_[j] == '-';
    if (j < len_ && (text_[j] == '+' || text_[j] == '-')) ++j;
    const uint8_t exp_start = j;
    for (; j < len_ && is_digit(text_[j]); ++j) {
      if (exp < 1000) exp = static_cast<int16_t>(exp * 10 + (text_[j] - '0'));  // saturates
    }
    if (j == exp_start) return i;
    if (exp_neg) exp = static_cast<int16_t>(-exp);
  }
  if (out == 0) return j;
  out->is_int = !has_exp && frac_start == frac_end;
  out->neg = neg;
  const uint8_t digits = static_cast<uint8_t>(int_digits + (frac_end - frac_start));
  // The digits before this index make up the integer part of x * 10^scale.
  const int16_t whole = static_cast<int16_t>(int_digits + exp + scale);
  uint32_t v = 0;
  bool overflow = false;
  bool sticky = false;
  for (int16_t k = 0; k < digits || (k < whole && v != 0 && !overflow); ++k) {
    uint8_t d = 0;
    if (k < digits) {
      d = static_cast<uint8_t>(
          (k < int_digits ? text_[int_start + k] : text_[frac_start + (k - int_digits)]) - '0');
    }
    if (k >= whole) {
      sticky = sticky || d != 0;
    } else if (v > 429496729ul || (v == 429496729ul && d > 5)) {
      overflow = true;
    } else if (!overflow) {
      v = v * 10 + d;
    }
  }
  out->overflow = overflow;
  out->sticky = sticky;
  out->value = v;
  return j;
}

bool JsonBody::text_equals(uint8_t off, uint8_t len, const char* flash) const {
  for (uint8_t k = 0; k < len; ++k) {
    char f = flash_char(flash + k);
    if (f == '\0' || f != text_[off + k]) return false;
  }
  return flash_char(flash + len) == '\0';
}

Err JsonBody::parse(const char* text, uint8_t len) {
  enum State : uint8_t { kValue, kFirstValue, kKey, kFirstKey, kColon, kAfter, kEnd };
  text_ = text;
  len_ = len;
  nkeys_ = 0;
  Nesting nesting;
  uint8_t depth = 0;
  bool nonflat = false;
  uint8_t i = skip_ws(0);
  if (i >= len || text[i] != '{') return Err::BadJson;  // only an object is a frame body
  State st = kValue;
  while (true) {
    i = skip_ws(i);
    if (st == kEnd) {
      if (i != len) return Err::BadJson;
      return nonflat ? Err::BadType : Err::None;
    }
    if (i >= len) return Err::BadJson;
    const char c = text[i];
    const bool array = nesting.array(depth);
    if ((st == kFirstValue && c == ']') || (st == kFirstKey && c == '}') ||
        (st == kAfter && c == (array ? ']' : '}'))) {
      if (!array && depth > 1) {
        while (nkeys_ > 0 && keys_[nkeys_ - 1].depth == depth) --nkeys_;  // its keys are done
      }
      --depth;
      ++i;
      st = depth == 0 ? kEnd : kAfter;
      continue;
    }
    switch (st) {
      case kValue:
      case kFirstValue: {
        // The elements of a top-level member's array must be integers.
        const bool element = depth == 2 && array;
        if (c == '{' || c == '[') {
          if (element || (depth == 1 && c == '{')) nonflat = true;
          ++depth;
          nesting.set(depth, c == '[');
          ++i;
          st = c == '{' ? kFirstKey : kFirstValue;
          continue;
        }
        if (c == '"') {
          uint8_t j = static_cast<uint8_t>(i + 1);
          while (j < len && text[j] != '"' && text[j] != '\\') ++j;
          if (j >= len || text[j] != '"') return Err::BadJson;
          i = static_cast<uint8_t>(j + 1);
          if (element) nonflat = true;
        } else if (c == 't' || c == 'f' || c == 'n') {
          const char* word = c == 't' ? kTrue : c == 'f' ? kFalse : kNull;
          uint8_t n = c == 'f' ? 5 : 4;
          if (static_cast<uint16_t>(i) + n > len || !text_equals(i, n, word)) return Err::BadJson;
          i = static_cast<uint8_t>(i + n);
          if (element) nonflat = true;
        } else {
          uint8_t j = scan_number(i, 0, 0);
          if (j == i) return Err::BadJson;
          if (element) {
            for (uint8_t k = i; k < j; ++k) {
              if (text[k] == '.' || text[k] == 'e' || text[k] == 'E') nonflat = true;
            }
          }
          i = j;
        }
        st = kAfter;
        break;
      }
      case kKey:
      case kFirstKey: {
        if (c != '"') return Err::BadJson;
        uint8_t j = static_cast<uint8_t>(i + 1);
        while (j < len && text[j] != '"' && text[j] != '\\') ++j;
        if (j >= len || text[j] != '"') return Err::BadJson;
        const uint8_t off = static_cast<uint8_t>(i + 1);
        const uint8_t klen = static_cast<uint8_t>(j - off);
        for (uint8_t k = nkeys_; k > 0 && keys_[k - 1].depth == depth; --k) {
          const Key& other = keys_[k - 1];
          if (other.len != klen) continue;
          uint8_t m = 0;
          while (m < klen && text[other.off + m] == text[off + m]) ++m;
          if (m == klen) return Err::BadJson;  // duplicate key
        }
        if (nkeys_ >= kMaxKeys) return Err::BadJson;  // cannot happen: see kMaxKeys
        keys_[nkeys_].off = off;
        keys_[nkeys_].len = klen;
        keys_[nkeys_].depth = depth;
        ++nkeys_;
        i = static_cast<uint8_t>(j + 1);
        st = kColon;
        break;
      }
      case kColon:
        if (c != ':') return Err::BadJson;
        ++i;
        st = kValue;
        break;
      case kAfter:
        if (c != ',') return Err::BadJson;
        ++i;
        st = array ? kValue : kKey;
        break;
      case kEnd:
        break;
    }
  }
}

uint8_t JsonBody::key_count() const { return nkeys_; }

uint8_t JsonBody::key_at(uint8_t i, uint8_t* len) const {
  *len = keys_[i].len;
  return keys_[i].off;
}

bool JsonBody::key_is(uint8_t i, const char* flash_key) const {
  return text_equals(keys_[i].off, keys_[i].len, flash_key);
}

uint8_t JsonBody::key_id(uint8_t i, const char* names, uint8_t count) const {
  uint8_t id = 0;
  for (; id < count && !key_is(i, names); ++id) {
    while (flash_char(names++) != '\0') {
    }
  }
  return id;
}

int16_t JsonBody::value_of_key(uint8_t i) const {
  uint8_t j = skip_ws(static_cast<uint8_t>(keys_[i].off + keys_[i].len + 1));  // past the '"'
  return skip_ws(static_cast<uint8_t>(j + 1));                                 // past the ':'
}

int16_t JsonBody::find(const char* flash_key) const {
  for (uint8_t i = 0; i < nkeys_; ++i) {
    if (key_is(i, flash_key)) return value_of_key(i);
  }
  return -1;
}

JsonType JsonBody::type_at(uint8_t off) const {
  switch (text_[off]) {
    case '"':
      return JsonType::String;
    case '{':
      return JsonType::Object;
    case '[':
      return JsonType::Array;
    case 't':
      return JsonType::True;
    case 'f':
      return JsonType::False;
    case 'n':
      return JsonType::Null;
    default:
      return JsonType::Number;
  }
}

bool JsonBody::number_at(uint8_t off, uint8_t scale, JsonNumber* out) const {
  if (type_at(off) != JsonType::Number) return false;
  scan_number(off, scale, out);
  return true;
}

uint8_t JsonBody::string_at(uint8_t off, uint8_t* len) const {
  uint8_t j = static_cast<uint8_t>(off + 1);
  while (text_[j] != '"') ++j;
  *len = static_cast<uint8_t>(j - off - 1);
  return static_cast<uint8_t>(off + 1);
}

uint8_t JsonBody::value_len(uint8_t off) const {
  switch (type_at(off)) {
    case JsonType::String: {
      uint8_t n;
      string_at(off, &n);
      return static_cast<uint8_t>(n + 2);
    }
    case JsonType::Number:
      return static_cast<uint8_t>(scan_number(off, 0, 0) - off);
    case JsonType::True:
    case JsonType::Null:
      return 4;
    case JsonType::False:
      return 5;
    case JsonType::Array:
    case JsonType::Object: {
      uint8_t depth = 0;
      uint8_t j = off;
      bool in_string = false;
      for (;; ++j) {
        const char c = text_[j];
        if (in_string) {
          in_string = c != '"';
        } else if (c == '"') {
          in_string = true;
        } else if (c == '[' || c == '{') {
          ++depth;
        } else if ((c == ']' || c == '}') && --depth == 0) {
          return static_cast<uint8_t>(j + 1 - off);
        }
      }
    }
  }
  return 0;
}

bool JsonBody::array_int(uint8_t off, uint8_t* pos, JsonNumber* out) const {
  uint8_t j = *pos == 0 ? static_cast<uint8_t>(off + 1) : *pos;
  j = skip_ws(j);
  if (text_[j] == ',') j = skip_ws(static_cast<uint8_t>(j + 1));
  if (text_[j] == ']') return false;
  number_at(j, 0, out);
  *pos = scan_number(j, 0, 0);
  return true;
}

}  // namespace powerlink
