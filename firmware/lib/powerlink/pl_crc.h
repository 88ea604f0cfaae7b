// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0 (docs/protocol.md §1).
#ifndef POWERLINK_PL_CRC_H
#define POWERLINK_PL_CRC_H

#include <stddef.h>
#include <stdint.h>

#if defined(__AVR__)
#include <util/crc16.h>
#endif

namespace powerlink {

const uint16_t kCrcInit = 0xFFFF;

inline uint16_t crc16_update(uint16_t crc, uint8_t byte) {
#if defined(__AVR__)
  return _crc_xmodem_update(crc, byte);  // avr-libc's CCITT (0x1021, MSB first)
#else
  crc = static_cast<uint16_t>(crc ^ (byte << 8));
  for (uint8_t i = 0; i < 8; ++i) {
    const bool top = (crc & 0x8000) != 0;
    crc = static_cast<uint16_t>(crc << 1);
    if (top) crc = static_cast<uint16_t>(crc ^ 0x1021);
  }
  return crc;
#endif
}

inline uint16_t crc16(const char* data, size_t len) {
  uint16_t crc = kCrcInit;
  for (size_t i = 0; i < len; ++i) crc = crc16_update(crc, static_cast<uint8_t>(data[i]));
  return crc;
}

}  // namespace powerlink

#endif
