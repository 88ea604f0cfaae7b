// Test fixture of the simavr board runner (firmware/sim): a tiny sketch that
// talks to the INA219 at 0x40 over Wire and answers line commands on Serial.
//
// Serial at 115200. At boot it bumps an EEPROM boot counter, writes the
// calibration register (4096) and prints "boot <n> cal=<status>".
// Commands (one per line, numbers decimal or 0x-hex), answers one line each:
//   r <reg>          -> "r <reg> <value>"        16-bit register read (value decimal)
//   w <reg> <value>  -> "w <reg> <status>"       16-bit register write (Wire status, 0 = ok)
//   d                -> "d cfg=.. shunt=.. bus=.. power=.. current=.. cal=.."
//   c                -> like d, after waiting for CNVR (bus bit 1); reading power clears it
//   t <config>       -> "t <micros>"             write config, then micros until CNVR is set
//   p                -> "p <status>"             probe: Wire status of an empty write to 0x40
//   k <hz>           -> "k <twbr>"               Wire.setClock(hz): the bus rate from now on
//   K <twbr> <twps>  -> "K <twbr> <twps>"        the bit rate registers set directly
//   m <reg> <count>  -> "m <micros>"             count reads of reg, back to back
//   M <reg> <count>  -> "M <micros>"             count writes of reg's value, back to back
// Register values are raw: signed registers (shunt, current) print as signed.
#include <Arduino.h>
#include <EEPROM.h>
#include <Wire.h>

static const uint8_t INA = 0x40;
static char line[48];
static uint8_t len;

static uint8_t ina_write(uint8_t reg, uint16_t value) {
  Wire.beginTransmission(INA);
  Wire.write(reg);
  Wire.write(uint8_t(value >> 8));
  Wire.write(uint8_t(value & 0xFF));
  return Wire.endTransmission();
}

static bool ina_read(uint8_t reg, uint16_t *value) {
  Wire.beginTransmission(INA);
  Wire.write(reg);
  if (Wire.endTransmission() != 0) return false;
  if (Wire.requestFrom(INA, uint8_t(2)) != 2) return false;
  uint16_t hi = Wire.read();
  uint16_t lo = Wire.read();
  *value = (hi << 8) | lo;
  return true;
}

static void print_reg(uint8_t reg, uint16_t v) {
  if (reg == 1 || reg == 4)
    Serial.print(int16_t(v));
  else
    Serial.print(v);
}

static void dump(char tag) {
  static const char *const names[6] = {"cfg", "shunt", "bus", "power", "current", "cal"};
  uint16_t v[6];
  // Read power last so a CNVR bit seen in bus belongs to the same conversion.
  static const uint8_t order[6] = {0, 1, 2, 4, 5, 3};
  for (uint8_t i = 0; i < 6; i++) {
    if (!ina_read(order[i], &v[order[i]])) {
      Serial.print(tag);
      Serial.println(F(" i2c"));
      return;
    }
  }
  Serial.print(tag);
  for (uint8_t i = 0; i < 6; i++) {
    Serial.print(' ');
    Serial.print(names[i]);
    Serial.print('=');
    print_reg(i, v[i]);
  }
  Serial.println();
}

static bool wait_cnvr(uint32_t timeout_us) {
  uint32_t start = micros();
  uint16_t bus;
  while (micros() - start < timeout_us) {
    if (ina_read(2, &bus) && (bus & 2)) return true;
  }
  return false;
}

static void command(char *s) {
  char *end;
  char op = s[0];
  long a = strtol(s + 1, &end, 0);
  long b = strtol(end, &end, 0);
  if (op == 'r') {
    uint16_t v;
    Serial.print(F("r "));
    Serial.print(a);
    Serial.print(' ');
    if (ina_read(uint8_t(a), &v))
      print_reg(uint8_t(a), v);
    else
      Serial.print(F("i2c"));
    Serial.println();
  } else if (op == 'w') {
    uint8_t st = ina_write(uint8_t(a), uint16_t(b));
    Serial.print(F("w "));
    Serial.print(a);
    Serial.print(' ');
    Serial.println(st);
  } else if (op == 'd') {
    dump('d');
  } else if (op == 'c') {
    if (wait_cnvr(300000UL))
      dump('c');
    else
      Serial.println(F("c timeout"));
  } else if (op == 't') {
    uint8_t st = ina_write(0, uint16_t(a));
    uint32_t start = micros();
    uint16_t bus = 0;
    bool ok = false;
    while (st == 0 && micros() - start < 500000UL) {
      if (ina_read(2, &bus) && (bus & 2)) {
        ok = true;
        break;
      }
    }
    uint32_t took = micros() - start;
    Serial.print(F("t "));
    if (ok)
      Serial.println(took);
    else
      Serial.println(F("timeout"));
  } else if (op == 'k') {
    Wire.setClock(uint32_t(a));
    Serial.print(F("k "));
    Serial.println(TWBR);
  } else if (op == 'K') {
    TWBR = uint8_t(a);
    TWSR = uint8_t(b & 3);
    Serial.print(F("K "));
    Serial.print(TWBR);
    Serial.print(' ');
    Serial.println(TWSR & 3);
  } else if (op == 'm' || op == 'M') {
    uint16_t v = 0;
    bool ok = ina_read(uint8_t(a), &v);
    uint32_t start = micros();
    for (long i = 0; ok && i < b; i++)
      ok = op == 'm' ? ina_read(uint8_t(a), &v) : ina_write(uint8_t(a), v) == 0;
    uint32_t took = micros() - start;
    Serial.print(op);
    Serial.print(' ');
    if (ok)
      Serial.println(took);
    else
      Serial.println(F("i2c"));
  } else if (op == 'p') {
    Wire.beginTransmission(INA);
    Serial.print(F("p "));
    Serial.println(Wire.endTransmission());
  } else {
    Serial.println(F("? unknown"));
  }
}

void setup() {
  Serial.begin(115200);
  Wire.begin();
  uint16_t boot;
  EEPROM.get(0, boot);
  boot++;
  EEPROM.put(0, boot);
  uint8_t st = ina_write(5, 4096);
  Serial.print(F("boot "));
  Serial.print(boot);
  Serial.print(F(" cal="));
  Serial.println(st);
}

void loop() {
  while (Serial.available()) {
    char ch = Serial.read();
    if (ch == '\r') continue;
    if (ch == '\n') {
      line[len] = 0;
      if (len) command(line);
      len = 0;
    } else if (len < sizeof(line) - 1) {
      line[len++] = ch;
    }
  }
}
