// The INA219 driver's bus over Arduino's Wire (TWI). Wire's timeout keeps a stuck bus from
// hanging the caller: a transfer that times out fails like a chip that does not answer.
#ifndef INA219_WIRE_H
#define INA219_WIRE_H

#include <Wire.h>
#include <stdint.h>

namespace ina219 {

class WireBus {
 public:
  bool write(uint8_t address, const uint8_t* data, uint8_t len) {
    Wire.beginTransmission(address);
    Wire.write(data, len);
    return Wire.endTransmission() == 0;
  }

  bool read(uint8_t address, uint8_t* data, uint8_t len) {
    if (Wire.requestFrom(address, len) != len) return false;
    for (uint8_t i = 0; i < len; ++i) data[i] = static_cast<uint8_t>(Wire.read());
    return true;
  }
};

}  // namespace ina219

#endif
