// Constant text lives in flash on AVR (an Uno has 2 KB of RAM); elsewhere it is plain memory.
// avr-libc's pgmspace is part of the C library, not of Arduino.
#ifndef POWERLINK_PL_FLASH_H
#define POWERLINK_PL_FLASH_H

#include <stdint.h>

#if defined(__AVR__)
#include <avr/pgmspace.h>
#define PL_FLASH PROGMEM
#else
#define PL_FLASH
#endif

namespace powerlink {

inline char flash_char(const char* p) {
#if defined(__AVR__)
  return static_cast<char>(pgm_read_byte(p));
#else
  return *p;
#endif
}

inline uint8_t flash_byte(const uint8_t* p) {
  return static_cast<uint8_t>(flash_char(reinterpret_cast<const char*>(p)));
}

inline uint32_t flash_u32(const uint32_t* p) {
#if defined(__AVR__)
  return pgm_read_dword(p);
#else
  return *p;
#endif
}

// Copy n bytes from flash.
inline void flash_copy(void* to, const void* from, uint8_t n) {
#if defined(__AVR__)
  memcpy_P(to, from, n);
#else
  const uint8_t* f = static_cast<const uint8_t*>(from);
  uint8_t* t = static_cast<uint8_t*>(to);
  while (n-- > 0) *t++ = *f++;
#endif
}

// The index-th string of a flash list of NUL-terminated strings ("a\0bc\0...").
inline const char* flash_nth(const char* list, uint8_t index) {
  while (index > 0) {
    while (flash_char(list) != '\0') ++list;
    ++list;
    --index;
  }
  return list;
}

}  // namespace powerlink

#endif
