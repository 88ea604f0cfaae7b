// The powerlink host tests (doctest): `make firmware-test`, or `pio test -e native`.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdio>

#include "support.h"

namespace test {

Rig::Rig(uint16_t boot, uint16_t interval_ms, uint32_t first_seq) {
  device.events().hook = &Rig::record;
  device.events().context = this;
  powerlink::Settings settings;
  settings.interval_ms = interval_ms;
  device.begin(boot, settings, first_seq);
}

void Rig::record(void* rig, const powerlink::Event& e) {
  Recorded r{e.kind, e.seq, e.err, e.cause, {}, {}};
  if (e.seqs != nullptr) r.seqs.assign(e.seqs, e.seqs + e.count);
  if (e.line != nullptr) r.line.assign(e.line, e.len);
  static_cast<Rig*>(rig)->events.push_back(r);
}

std::vector<std::string> Rig::take_lines() {
  std::string out;
  char chunk[64];
  for (uint8_t n; (n = device.read(chunk, sizeof chunk)) > 0;) out.append(chunk, n);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(out.substr(start, nl + 1 - start));
  }
  CHECK(start == out.size());  // nothing but whole lines
  return lines;
}

std::vector<uint32_t> Rig::take_sample_seqs() {
  std::vector<uint32_t> seqs;
  for (const std::string& line : take_lines()) {
    if (is_sample(line)) seqs.push_back(static_cast<uint32_t>(std::stoul(field(line, "seq"))));
  }
  return seqs;
}

std::string Rig::take_last_sample() {
  std::string last;
  for (const std::string& line : take_lines()) {
    if (is_sample(line)) last = line;
  }
  REQUIRE(!last.empty());
  return last;
}

void Rig::feed(const std::string& text, uint32_t ms) {
  device.receive(text.data(), text.size(), ms);
}

void Rig::reading(uint32_t ms) { device.add(powerlink::Readings::one(5000, 2500, 1250), ms); }

std::vector<uint32_t> Rig::run(uint32_t from, uint32_t to, uint32_t step) {
  std::vector<uint32_t> seqs;
  for (uint32_t ms = from; ms <= to; ms += step) {
    reading(ms);
    for (uint32_t seq : take_sample_seqs()) seqs.push_back(seq);
  }
  return seqs;
}

size_t Rig::count(powerlink::EventKind kind) const {
  size_t n = 0;
  for (const Recorded& e : events) n += e.kind == kind;
  return n;
}

std::string frame(const std::string& body) {
  char crc[8];
  std::snprintf(crc, sizeof crc, "*%04X\n", powerlink::crc16(body.data(), body.size()));
  return body + crc;
}

std::string body_of(const std::string& line) {
  REQUIRE(line.size() >= 7);
  REQUIRE(line.back() == '\n');
  const std::string body = line.substr(0, line.size() - 6);
  CHECK(frame(body) == line);
  return body;
}

std::string field(const std::string& line, const std::string& key) {
  const std::string body = body_of(line);
  for (const char* before : {"{", ","}) {
    const size_t at = body.find(before + ("\"" + key + "\":"));
    if (at == std::string::npos) continue;
    const size_t start = at + key.size() + 4;
    return body.substr(start, body.find_first_of(",}", start) - start);
  }
  return "";
}

bool is_sample(const std::string& line) { return !field(line, "status").empty(); }

}  // namespace test

int main(int argc, char** argv) {
  doctest::Context context;
#ifdef PIO_UNIT_TESTING
  context.setOption("success", true);      // PlatformIO reads the results from the output
  context.setOption("no-exitcode", true);  // and wants no exit code
#endif
  context.applyCommandLine(argc, argv);
  return context.run();
}
