// INA219 current/power monitor driver (TI datasheet SBOS448). Portable: the I2C bus is a
// template parameter with two calls,
//   bool write(uint8_t address, const uint8_t* data, uint8_t len);
//   bool read(uint8_t address, uint8_t* data, uint8_t len);
// ina219_wire.h gives one over Arduino's Wire; the host tests give a simulated chip.
#ifndef INA219_H
#define INA219_H

#include <stdint.h>

namespace ina219 {

const uint8_t kAddress = 0x40;  // A0 and A1 to GND

enum Register : uint8_t {
  kConfig = 0x00,
  kShuntVoltage = 0x01,
  kBusVoltage = 0x02,
  kPower = 0x03,
  kCurrent = 0x04,
  kCalibrationRegister = 0x05,
};

// Power-on configuration: 32 V bus range, gain /8 (+-320 mV shunt: 3.2 A at 0.1 ohm), 12-bit
// single-sample bus and shunt conversions, shunt and bus continuous. Only the ADC fields change.
const uint16_t kConfigDefault = 0x399F;
const uint16_t kConfigReset = 0x8000;
const uint8_t kBadcShift = 7;
const uint8_t kSadcShift = 3;
const uint16_t kAdcMask = 0x0F;

// Calibration for a 0.1 ohm shunt and a 100 uA current step (3.2 A full scale):
// trunc(0.04096 / (100e-6 A * 0.1 ohm)) = 4096. A power step is 20 current steps: 2 mW.
const uint16_t kCalibration = 4096;
const uint8_t kPowerStepMw = 2;

// Bus voltage register: bits 15..3 the voltage in 4 mV steps, bit 1 CNVR (a conversion is
// ready), bit 0 OVF (the power or current calculation overflowed).
const uint16_t kCnvr = 0x0002;
const uint16_t kOvf = 0x0001;
const uint8_t kBusStepMv = 4;

// The ADC field for n samples averaged: 0011 is 12-bit single, 1nnn averages 2^nnn samples.
// Returns 0xFF for a count the chip cannot average.
inline uint8_t adc_field(uint8_t samples) {
  if (samples == 1) return 0x3;
  for (uint8_t bits = 1; bits <= 7; ++bits) {
    if (samples == (1u << bits)) return static_cast<uint8_t>(0x8 | bits);
  }
  return 0xFF;
}

inline uint16_t config_for(uint8_t samples) {
  const uint16_t field = adc_field(samples) & kAdcMask;
  const uint16_t fields = static_cast<uint16_t>(kAdcMask << kBadcShift | kAdcMask << kSadcShift);
  const uint16_t adc = static_cast<uint16_t>((field << kBadcShift) | (field << kSadcShift));
  return static_cast<uint16_t>((kConfigDefault & ~fields) | adc);
}

struct Reading {
  uint16_t bus_mv;
  int16_t current_100ua;  // 0.1 mA steps (the current register at kCalibration)
  uint32_t power_mw;
  bool overflow;          // OVF: current and power are not valid
  bool calibrated;        // false: the chip had lost its calibration, current and power are 0
};

enum class Poll : uint8_t { NotReady, Ready, Failed };

template <class Bus>
class Ina219 {
 public:
  explicit Ina219(Bus& bus, uint8_t address = kAddress)
      : bus_(bus), address_(address), samples_(1), configured_(false) {}

  // Configure and calibrate. False if the chip did not answer.
  bool begin(uint8_t samples) {
    samples_ = samples;
    configured_ = write_register(kConfig, config_for(samples)) &&
                  write_register(kCalibrationRegister, kCalibration);
    return configured_;
  }

  // Average this many samples (1, 2, 4 ... 128) per conversion.
  bool set_samples(uint8_t samples) {
    if (adc_field(samples) == 0xFF) return false;
    samples_ = samples;
    configured_ = configured_ && write_register(kConfig, config_for(samples));
    return configured_;
  }
  uint8_t samples() const { return samples_; }
  bool configured() const { return configured_; }

  // One poll: Ready with a new conversion's values, NotReady while the chip converts, Failed if
  // it did not answer (the next poll configures it again). Reading the power register clears
  // CNVR, so each conversion is read once. A power cycle of the chip alone clears its
  // calibration, and with it the current (Current = Shunt x Cal / 4096): a current of 0 is
  // told from a lost calibration by reading the calibration register, so no reading of an
  // uncalibrated chip passes unflagged, and the next poll configures it again.
  Poll poll(Reading* out) {
    if (!configured_ && !begin(samples_)) return Poll::Failed;
    uint16_t bus, current, power, cal = kCalibration;
    if (!read_register(kBusVoltage, &bus)) return fail();
    if ((bus & kCnvr) == 0) return Poll::NotReady;
    if (!read_register(kCurrent, &current) || !read_register(kPower, &power)) return fail();
    if (current == 0 && !read_register(kCalibrationRegister, &cal)) return fail();
    out->calibrated = cal == kCalibration;
    if (!out->calibrated) configured_ = false;
    out->bus_mv = static_cast<uint16_t>((bus >> 3) * kBusStepMv);
    out->overflow = (bus & kOvf) != 0;
    out->current_100ua = static_cast<int16_t>(current);
    out->power_mw = static_cast<uint32_t>(power) * kPowerStepMw;
    return Poll::Ready;
  }

  // Shunt voltage in 10 uV steps.
  bool read_shunt(int16_t* uv10) {
    uint16_t raw;
    if (!read_register(kShuntVoltage, &raw)) {
      configured_ = false;
      return false;
    }
    *uv10 = static_cast<int16_t>(raw);
    return true;
  }

  // Whether the chip still holds our calibration (a power cycle of the INA219 clears it to 0).
  // If not, the next poll configures it again.
  bool check() {
    uint16_t cal;
    if (!read_register(kCalibrationRegister, &cal) || cal != kCalibration) configured_ = false;
    return configured_;
  }

  bool read_register(uint8_t reg, uint16_t* value) {
    uint8_t data[2];
    if (!bus_.write(address_, &reg, 1) || !bus_.read(address_, data, 2)) return false;
    *value = static_cast<uint16_t>((data[0] << 8) | data[1]);
    return true;
  }

  bool write_register(uint8_t reg, uint16_t value) {
    const uint8_t data[3] = {reg, static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
    return bus_.write(address_, data, 3);
  }

 private:
  Poll fail() {
    configured_ = false;  // maybe the chip reset: configure it again before trusting it
    return Poll::Failed;
  }

  Bus& bus_;
  uint8_t address_;
  uint8_t samples_;
  bool configured_;
};

}  // namespace ina219

#endif
