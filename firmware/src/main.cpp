// powerhil firmware: an INA219 power monitor speaking protocol v1 (docs/protocol.md) on the
// serial port at 115200 8N1. The loop never waits: it reads what has arrived, polls the sensor
// (a reading per finished conversion), runs the link's timers and writes only as much as the
// serial transmit buffer has room for.
#include <Arduino.h>
#include <EEPROM.h>
#include <Wire.h>

#include "ina219.h"
#include "ina219_wire.h"
#include "powerlink.h"

namespace {

const uint32_t kBaud = 115200;
// The INA219 does fast mode (400 kHz); POWERHIL_I2C_CLOCK builds a variant at another rate
// (docs/performance.md compares them).
#ifndef POWERHIL_I2C_CLOCK
#define POWERHIL_I2C_CLOCK 400000
#endif
const uint32_t kI2cClock = POWERHIL_I2C_CLOCK;
const uint32_t kI2cTimeoutUs = 5000;    // a stuck bus fails the transfer instead of hanging
const int kBootCounterAddress = 0;      // EEPROM: uint16_t, +1 each boot
const uint16_t kCheckMs = 1000;         // how often the INA219's calibration is verified
const uint8_t kChunk = 63;              // at most a serial transmit buffer's room at once
const uint8_t kMinChunk = 40;           // each piece renders the line again: not too many

powerlink::Device link;
ina219::WireBus bus;
ina219::Ina219<ina219::WireBus> sensor(bus);

// Log lines for people ('#', never parsed), sent between frames.
const char kLogReady[] PROGMEM = "# ina219: ready at 0x40, calibration 4096\n";
const char kLogMissing[] PROGMEM = "# ina219: no answer at 0x40, reporting status i2c\n";
const char kLogRecalibrated[] PROGMEM = "# ina219: calibration lost, set again\n";
const char* log_pending = nullptr;
bool sensor_answering = false;
uint32_t last_check_ms = 0;

uint16_t next_boot() {
  uint16_t boot;
  EEPROM.get(kBootCounterAddress, boot);
  ++boot;  // a fresh EEPROM holds 0xFFFF: the first boot is 0
  EEPROM.put(kBootCounterAddress, boot);
  return boot;
}

void receive(uint32_t now) {
  char data[16];
  uint8_t n = 0;
  int available = Serial.available();
  while (available-- > 0) {
    data[n++] = static_cast<char>(Serial.read());
    if (n == sizeof data) {
      link.receive(data, n, now);
      n = 0;
    }
  }
  if (n > 0) link.receive(data, n, now);
}

void sensor_state(bool answering) {
  if (answering != sensor_answering) log_pending = answering ? kLogReady : kLogMissing;
  sensor_answering = answering;
}

void measure(uint32_t now) {
  if (sensor.samples() != link.settings().avg) sensor.set_samples(link.settings().avg);
  if (now - last_check_ms >= kCheckMs) {
    last_check_ms = now;
    if (sensor.configured() && !sensor.check()) log_pending = kLogRecalibrated;
  }
  ina219::Reading r;
  switch (sensor.poll(&r)) {
    case ina219::Poll::Ready:
      sensor_state(true);
      // Current and power of an overflow or of a chip that lost its calibration are not valid:
      // either reading is flagged ovf.
      if (!r.calibrated) log_pending = kLogRecalibrated;
      link.add(powerlink::Readings::one(r.bus_mv, r.current_100ua, r.power_mw,
                                        r.overflow || !r.calibrated ? powerlink::Fault::Ovf
                                                                    : powerlink::Fault::None),
               now);
      break;
    case ina219::Poll::Failed:
      sensor_state(false);
      link.add(powerlink::Readings::failed(), now);
      break;
    case ina219::Poll::NotReady:
      break;
  }
}

void transmit() {
  const int room = Serial.availableForWrite();
  char chunk[kChunk];
  if (log_pending != nullptr && !link.line_started()) {
    const uint8_t len = static_cast<uint8_t>(strlen_P(log_pending));
    if (room >= len) {
      memcpy_P(chunk, log_pending, len);
      Serial.write(chunk, len);
      log_pending = nullptr;
    }
    return;
  }
  const uint8_t left = link.line_bytes();
  uint8_t n = room < kChunk ? static_cast<uint8_t>(room) : kChunk;
  if (n > left) n = left;
  if (n == 0 || (n < left && n < kMinChunk)) return;
  n = link.read(chunk, n);
  Serial.write(chunk, n);
}

}  // namespace

void setup() {
  Serial.begin(kBaud);
  Wire.begin();
  Wire.setClock(kI2cClock);
  Wire.setWireTimeout(kI2cTimeoutUs, true);
  link.begin(next_boot());
  sensor_state(sensor.begin(link.settings().avg));
  if (!sensor_answering) log_pending = kLogMissing;
}

void loop() {
  const uint32_t now = millis();
  receive(now);
  measure(now);
  link.tick(now);
  transmit();
}
