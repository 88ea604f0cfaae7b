// The INA219 driver against a simulated chip on a simulated I2C bus (TI SBOS448 registers).
#include <vector>

#include "ina219.h"
#include "support.h"

namespace {

// An INA219's register file on the bus: a pointer byte, then two-byte registers big-endian.
// Reading the power register clears CNVR, as the datasheet says.
struct Chip {
  uint16_t regs[6] = {ina219::kConfigDefault, 0, 0, 0, 0, 0};
  uint8_t pointer = 0;
  bool answering = true;
  std::vector<std::pair<uint8_t, uint16_t>> writes;

  bool write(uint8_t address, const uint8_t* data, uint8_t len) {
    if (!answering || address != ina219::kAddress || len == 0 || data[0] > 5) return false;
    pointer = data[0];
    if (len == 3) {
      const auto value = static_cast<uint16_t>(data[1] << 8 | data[2]);
      writes.emplace_back(pointer, value);
      if (pointer == ina219::kConfig || pointer == ina219::kCalibrationRegister) {
        regs[pointer] = value;
      }
    }
    return true;
  }

  bool read(uint8_t address, uint8_t* data, uint8_t len) {
    if (!answering || address != ina219::kAddress || len != 2) return false;
    data[0] = static_cast<uint8_t>(regs[pointer] >> 8);
    data[1] = static_cast<uint8_t>(regs[pointer]);
    if (pointer == ina219::kPower) regs[ina219::kBusVoltage] &= ~ina219::kCnvr;
    return true;
  }

  // A conversion ends: 5 V on the bus, 0.25 A, 1.25 W.
  void convert(uint16_t flags = ina219::kCnvr) {
    regs[ina219::kBusVoltage] = static_cast<uint16_t>((5000 / 4) << 3 | flags);
    regs[ina219::kShuntVoltage] = 2500;  // 25 mV across 0.1 ohm
    regs[ina219::kCurrent] = 2500;       // 0.1 mA steps
    regs[ina219::kPower] = 625;          // 2 mW steps
  }
};

}  // namespace

TEST_CASE("ina219: configured as at power-on, calibrated for 0.1 ohm and 3.2 A") {
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  REQUIRE(sensor.begin(1));
  CHECK(chip.writes == std::vector<std::pair<uint8_t, uint16_t>>{{0x00, 0x399F}, {0x05, 4096}});
}

TEST_CASE("ina219: averaging sets both ADC fields (datasheet table 5)") {
  const std::pair<uint8_t, uint16_t> expected[] = {
      {1, 0x399F},   {2, 0x3CCF},   {4, 0x3D57},   {8, 0x3DDF},
      {16, 0x3E67},  {32, 0x3EEF},  {64, 0x3F77},  {128, 0x3FFF},
  };
  for (const auto& [samples, config] : expected) {
    CAPTURE(samples);
    Chip chip;
    ina219::Ina219<Chip> sensor(chip);
    REQUIRE(sensor.begin(1));
    REQUIRE(sensor.set_samples(samples));
    CHECK(chip.regs[ina219::kConfig] == config);
    CHECK(sensor.samples() == samples);
  }
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  CHECK(!sensor.set_samples(3));
}

TEST_CASE("ina219: a reading per conversion, told by CNVR") {
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  REQUIRE(sensor.begin(1));
  ina219::Reading r{};
  CHECK(sensor.poll(&r) == ina219::Poll::NotReady);
  chip.convert();
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);
  CHECK(r.bus_mv == 5000);
  CHECK(r.current_100ua == 2500);
  CHECK(r.power_mw == 1250);
  CHECK(!r.overflow);
  CHECK(sensor.poll(&r) == ina219::Poll::NotReady);  // reading the power cleared CNVR
  int16_t shunt = 0;
  REQUIRE(sensor.read_shunt(&shunt));
  CHECK(shunt == 2500);
}

TEST_CASE("ina219: negative current and the overflow flag") {
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  REQUIRE(sensor.begin(1));
  chip.convert(ina219::kCnvr | ina219::kOvf);
  chip.regs[ina219::kCurrent] = static_cast<uint16_t>(-1234);
  ina219::Reading r{};
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);
  CHECK(r.current_100ua == -1234);
  CHECK(r.overflow);
}

TEST_CASE("ina219: a chip that stops answering fails, and is configured again when it is back") {
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  REQUIRE(sensor.begin(16));
  chip.answering = false;
  ina219::Reading r{};
  CHECK(sensor.poll(&r) == ina219::Poll::Failed);
  CHECK(sensor.poll(&r) == ina219::Poll::Failed);
  chip = Chip();  // back, at its power-on values
  chip.convert();
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);
  CHECK(chip.writes == std::vector<std::pair<uint8_t, uint16_t>>{{0x00, 0x3E67}, {0x05, 4096}});
}

TEST_CASE("ina219: a lost calibration is noticed and set again") {
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  REQUIRE(sensor.begin(1));
  CHECK(sensor.check());
  chip.regs[ina219::kCalibrationRegister] = 0;  // the chip was power-cycled
  CHECK(!sensor.check());
  chip.convert();
  ina219::Reading r{};
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);
  CHECK(chip.regs[ina219::kCalibrationRegister] == 4096);
}

TEST_CASE("ina219: a reading of a power-cycled chip is flagged, and the chip set again") {
  Chip chip;
  ina219::Ina219<Chip> sensor(chip);
  REQUIRE(sensor.begin(4));
  ina219::Reading r{};
  chip.convert();
  chip.regs[ina219::kCurrent] = 0;  // a true 0 A: the calibration is read and holds
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);
  CHECK(r.calibrated);
  CHECK(sensor.configured());
  chip = Chip();  // power-cycled: power-on registers, calibration 0, so current and power 0
  chip.convert();
  chip.regs[ina219::kCurrent] = chip.regs[ina219::kPower] = 0;
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);
  CHECK(!r.calibrated);
  CHECK(r.bus_mv == 5000);  // the bus voltage needs no calibration
  CHECK(chip.writes.empty());
  chip.convert();
  REQUIRE(sensor.poll(&r) == ina219::Poll::Ready);  // configured again first
  CHECK(r.calibrated);
  CHECK(chip.writes == std::vector<std::pair<uint8_t, uint16_t>>{{0x00, 0x3D57}, {0x05, 4096}});
}
