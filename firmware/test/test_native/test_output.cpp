// What a device writes: fixed decimals at the INA219's steps (docs/protocol.md §3), the same
// bytes whatever pieces a line goes out in, sample values aggregated as §2.1 and §4 say.
#include "support.h"

using powerlink::Readings;
using test::field;
using test::Rig;

namespace {

powerlink::OutLine sample_line(int32_t a, int32_t amax) {
  powerlink::OutLine line;
  line.kind = powerlink::LineKind::Sample;
  powerlink::SampleRecord& r = line.sample;
  r.seq = 4294967295u;
  r.boot = 65535;
  r.dt = 4294967295u;
  r.values.ts = 4294967295u;
  r.values.n = 0;
  r.values.v_mv = 1;
  r.values.vmin_mv = 0;
  r.values.vmax_mv = 32768;
  r.values.a_100ua = a;
  r.values.amax_100ua = amax;
  r.values.w_mw = 1100000;
  r.values.status = powerlink::Status::I2c;
  return line;
}

std::string render(const powerlink::OutLine& line) {
  char out[powerlink::kMaxLine];
  const uint8_t len = powerlink::render_line(line, out);
  return std::string(out, len);
}

}  // namespace

TEST_CASE("numbers: fixed decimals, integers plain, no -0") {
  const std::string line = render(sample_line(-1234, 0));
  CHECK(line.substr(0, line.find('*')) ==
        R"({"seq":4294967295,"boot":65535,"ts":4294967295,"dt":4294967295,"v":0.001,"a":-0.1234,)"
        R"("w":1100.000,"vmin":0.000,"vmax":32.768,"amax":0.0000,"n":0,"status":"i2c"})");
  const std::string limits = render(sample_line(-327680, 327680));
  CHECK(limits.find(R"("a":-32.7680)") != std::string::npos);
  CHECK(limits.find(R"("amax":32.7680)") != std::string::npos);
  CHECK(render(sample_line(-1, -1)).find(R"("a":-0.0001,)") != std::string::npos);
}

TEST_CASE("a line written in pieces of any size is the same line") {
  for (const powerlink::OutLine& line : {sample_line(-1234, 5), sample_line(0, 0)}) {
    const std::string whole = render(line);
    uint8_t length = 0;
    const uint16_t crc = powerlink::line_crc(line, &length);
    REQUIRE(length == whole.size());
    for (uint8_t piece = 1; piece <= 70; ++piece) {
      std::string joined;
      char out[80];
      for (uint8_t from = 0; from < length; from = static_cast<uint8_t>(from + piece)) {
        joined.append(out, powerlink::render_part(line, crc, from, out, piece));
      }
      CHECK(joined == whole);
    }
  }
}

TEST_CASE("a line already going out is not changed by an ACK meanwhile") {
  Rig rig(1, 100);
  rig.run(10, 800);  // samples 0..7 sent: the window is full
  rig.feed(test::frame(R"({"nack":[0],"boot":1})"), 800);
  char first[10];
  REQUIRE(rig.device.read(first, sizeof first) == sizeof first);  // sample 0 starts going out
  rig.feed(test::frame(R"({"ack":7,"boot":1})"), 810);  // frees every place, sample 0's too
  for (uint32_t ms = 810; ms <= 900; ms += 10) rig.reading(ms);  // sample 8 takes its place
  std::string rest(first, sizeof first);
  char chunk[64];
  for (uint8_t n; (n = rig.device.read(chunk, sizeof chunk)) > 0;) rest.append(chunk, n);
  const std::string line0 = rest.substr(0, rest.find('\n') + 1);
  CHECK(field(line0, "seq") == "0");
  CHECK(field(line0, "ts") == "100");
  CHECK(field(rest.substr(line0.size()), "seq") == "8");
}

TEST_CASE("a sample: means to the nearest step, extremes, readings counted") {
  Rig rig(1, 100);
  rig.take_lines();
  Readings r = Readings::one(5000, -2500, 1250);
  rig.device.add(r, 10);
  r = Readings::one(5003, 2501, 1251);
  r.vmin_mv = 4990;
  r.amax_100ua = 2600;
  r.wmax_mw = 1300;
  rig.device.add(r, 20);
  rig.device.add(Readings::one(5001, 2500, 1250), 100);
  const std::string s = rig.take_last_sample();
  CHECK(field(s, "n") == "3");
  CHECK(field(s, "v") == "5.001");   // 15004 / 3 = 5001.33 mV
  CHECK(field(s, "a") == "0.0834");  // 2501 / 3 = 833.67 (0.1 mA)
  CHECK(field(s, "w") == "1.250");   // 3751 / 3 = 1250.33 mW
  CHECK(field(s, "vmin") == "4.990");
  CHECK(field(s, "vmax") == "5.003");
  CHECK(field(s, "amax") == "0.2600");
  CHECK(field(s, "status") == "\"ok\"");
}

TEST_CASE("a sample: halves round away from zero") {
  Rig rig(1, 100);
  rig.take_lines();
  rig.device.add(Readings::one(5000, -2500, 1000), 10);
  rig.device.add(Readings::one(5001, -2501, 1001), 100);
  const std::string s = rig.take_last_sample();
  CHECK(field(s, "v") == "5.001");
  CHECK(field(s, "a") == "-0.2501");
  CHECK(field(s, "w") == "1.001");
}

TEST_CASE("a sample: batches of readings weigh by their count") {
  Rig rig(1, 100);
  rig.take_lines();
  Readings batch = Readings::one(5000, 2500, 1250);
  batch.n = 3000000000u;  // 1.5e13 mV in all: past 32 bits
  batch.vmin_mv = 4900;
  batch.vmax_mv = 5100;
  rig.device.add(batch, 10);
  batch = Readings::one(4000, -32767, 0);
  batch.n = 1000000000u;
  rig.device.add(batch, 100);
  const std::string s = rig.take_last_sample();
  CHECK(field(s, "n") == "4000000000");
  CHECK(field(s, "v") == "4.750");
  CHECK(field(s, "a") == "-0.6317");  // (3e9 * 2500 - 1e9 * 32767) / 4e9 = -6316.75
  CHECK(field(s, "vmin") == "4.000");
  CHECK(field(s, "vmax") == "5.100");
}

TEST_CASE("status: the most severe condition of any reading") {
  Rig rig(1, 100);
  rig.take_lines();
  rig.feed(test::frame(R"({"cmd":"set_threshold","uv":4.5,"oc":1,"op":6,"seq":1})"), 1);
  const auto sample_status = [&rig](std::vector<Readings> readings) {
    static uint32_t now = 0;
    for (const Readings& r : readings) rig.device.add(r, now += 1);
    rig.device.add(Readings::one(5000, 0, 0), now += 100);
    const std::string s = rig.take_last_sample();
    rig.feed(test::frame(R"({"ack":)" + field(s, "seq") + R"(,"boot":1})"), now);
    return field(s, "status");
  };
  CHECK(sample_status({Readings::one(5000, 100, 500)}) == "\"ok\"");
  CHECK(sample_status({Readings::one(4499, 100, 500)}) == "\"uv\"");
  CHECK(sample_status({Readings::one(4499, 100, 6001)}) == "\"op\"");
  CHECK(sample_status({Readings::one(5000, 10001, 500), Readings::one(4000, 0, 0)}) == "\"oc\"");
  CHECK(sample_status({Readings::one(5000, 0, 0, powerlink::Fault::Ovf)}) == "\"ovf\"");
  CHECK(sample_status({Readings::failed(), Readings::one(5000, 10001, 0, powerlink::Fault::Ovf)}) ==
        "\"i2c\"");
}

TEST_CASE("a sample of failed reads only: n 0, values 0, status i2c") {
  Rig rig(1, 100);
  rig.take_lines();
  rig.device.add(Readings::failed(), 100);
  CHECK(rig.take_last_sample() ==
        test::frame(R"({"seq":0,"boot":1,"ts":100,"dt":100,"v":0.000,"a":0.0000,"w":0.000,)"
                    R"("vmin":0.000,"vmax":0.000,"amax":0.0000,"n":0,"status":"i2c"})"));
}

TEST_CASE("a sample closes only once it holds a reading") {
  Rig rig(1, 10);
  rig.take_lines();
  rig.device.tick(500);
  CHECK(rig.take_lines().empty());
  uint32_t deadline = 0;
  CHECK(!rig.device.next_deadline(&deadline));  // nothing to wait for but a reading
  rig.reading(568);                              // one slow conversion later
  const std::string s = rig.take_last_sample();
  CHECK(field(s, "ts") == "568");
  CHECK(field(s, "dt") == "568");
}
