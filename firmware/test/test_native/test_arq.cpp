// One test per device-side ARQ rule of docs/protocol.md §6 (R1-R6, R12's device half,
// R15-R18), numbered as there and mirroring tests/test_arq.py.
#include <set>

#include "support.h"

using powerlink::EventKind;
using test::field;
using test::frame;
using test::Rig;

namespace {

std::string ack(uint32_t seq, uint16_t boot = 1) {
  return frame("{\"ack\":" + std::to_string(seq) + ",\"boot\":" + std::to_string(boot) + "}");
}

std::string command(const std::string& name, uint32_t seq, const std::string& args = "",
                    int boot = 1) {
  std::string body = "{\"cmd\":\"" + name + "\"" + args + ",\"seq\":" + std::to_string(seq);
  if (boot >= 0) body += ",\"boot\":" + std::to_string(boot);
  return frame(body + "}");
}

std::vector<uint32_t> window(const Rig& rig) {
  std::vector<uint32_t> seqs;
  for (uint32_t s = rig.device.window_base(); s != rig.device.next_seq(); ++s) seqs.push_back(s);
  return seqs;
}

}  // namespace

TEST_CASE("R1 window: at most 8 samples sent and not acknowledged") {
  Rig rig(1, 100);
  rig.take_lines();
  const std::vector<uint32_t> seqs = rig.run(10, 2000);
  CHECK(std::set<uint32_t>(seqs.begin(), seqs.end()) == std::set<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(window(rig) == std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("R2 fold on full: the readings of the wait go into the next sample, none lost") {
  Rig rig(1, 100);
  rig.take_lines();
  rig.run(10, 2000);  // the window is full at 0.8 s; 0.81 .. 2.00 s fold
  rig.feed(ack(7), 2000);
  const std::vector<std::string> lines = rig.take_lines();
  REQUIRE(lines.size() == 1);
  CHECK(field(lines[0], "seq") == "8");
  CHECK(field(lines[0], "ts") == "2000");
  CHECK(field(lines[0], "dt") == "1200");
  CHECK(field(lines[0], "n") == "120");  // every reading from 0.81 s to 2.00 s
  CHECK(rig.events.back().kind == EventKind::SampleClosed);
  CHECK(rig.events.back().seq == 8);
}

TEST_CASE("R3 cumulative ACK releases up to N, ignores impossible ACKs") {
  Rig rig(1, 100);
  rig.run(10, 500);  // seqs 0..4 sent
  rig.feed(ack(9), 500);     // never sent
  rig.feed(ack(2, 0), 500);  // another boot
  CHECK(window(rig) == std::vector<uint32_t>{0, 1, 2, 3, 4});
  rig.feed(ack(2), 500);
  CHECK(window(rig) == std::vector<uint32_t>{3, 4});
  rig.feed(ack(1), 500);  // old
  CHECK(window(rig) == std::vector<uint32_t>{3, 4});
}

TEST_CASE("R4 NACK resends those seqs at once") {
  Rig rig(1, 100);
  rig.run(10, 500);
  rig.take_lines();
  rig.feed(frame("{\"nack\":[1,3,42],\"boot\":1}"), 500);
  CHECK(rig.take_sample_seqs() == std::vector<uint32_t>{1, 3});
  REQUIRE(rig.events.back().kind == EventKind::Resent);
  CHECK(rig.events.back().cause == powerlink::ResendCause::Nack);
  CHECK(rig.events.back().seqs == std::vector<uint32_t>{1, 3});
}

TEST_CASE("R5 timeout resends the window, backing off to 2 s; ACK progress resets it") {
  Rig rig(1);
  rig.take_lines();
  rig.reading(1000);  // seq 0 closes at 1.0 s
  CHECK(rig.take_sample_seqs() == std::vector<uint32_t>{0});
  std::vector<uint32_t> resends;
  uint32_t now = 1000;
  while (now < 9000) {
    REQUIRE(rig.device.next_deadline(&now));
    rig.device.tick(now);
    if (rig.take_sample_seqs() == std::vector<uint32_t>{0}) resends.push_back(now);
  }
  CHECK(std::vector<uint32_t>(resends.begin(), resends.begin() + 5) ==
        std::vector<uint32_t>{1300, 1900, 3100, 5100, 7100});  // 0.3, 0.6, 1.2, then 2 s
  rig.feed(ack(0), 7200);
  rig.reading(8000);
  uint32_t deadline = 0;
  REQUIRE(rig.device.next_deadline(&deadline));
  CHECK(deadline == 8300);
}

TEST_CASE("R6 boot: a hello with seq 0 and cmd -1, then samples from seq 0 and time 0") {
  Rig rig(17);
  const std::vector<std::string> lines = rig.take_lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] ==
        frame("{\"hello\":\"powerhil\",\"fw\":\"1.0.0\",\"boot\":17,\"seq\":0,\"interval\":1000,"
              "\"win\":8,\"cmd\":-1}"));
  rig.reading(1000);
  const std::vector<std::string> first = rig.take_lines();
  REQUIRE(first.size() == 1);
  CHECK(field(first[0], "seq") == "0");
  CHECK(field(first[0], "boot") == "17");
  CHECK(field(first[0], "ts") == "1000");
  CHECK(field(first[0], "dt") == "1000");
}

TEST_CASE("R12 answering hello, the device queues its whole window again") {
  Rig rig(4, 100);
  rig.run(10, 300);  // seqs 0..2 sent (and lost)
  rig.feed(command("hello", 0, "", -1), 350);
  const std::vector<std::string> lines = rig.take_lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] ==
        frame("{\"hello\":\"powerhil\",\"fw\":\"1.0.0\",\"boot\":4,\"seq\":0,\"interval\":100,"
              "\"win\":8,\"cmd\":-1,\"ack\":0}"));
  for (uint32_t seq = 0; seq < 3; ++seq) CHECK(field(lines[seq + 1], "seq") == std::to_string(seq));
}

TEST_CASE("R15 unreadable: a corrupt command is answered nack -1 with its kind, not executed") {
  Rig rig(1);
  rig.take_lines();
  std::string line = command("set_avg", 40, ",\"value\":8");
  line[10] = static_cast<char>(line[10] ^ 0x01);  // a bit flips on the way
  rig.feed(line, 1010);
  const std::vector<std::string> lines = rig.take_lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == frame(R"({"nack":-1,"err":"bad_crc"})"));
  CHECK(rig.device.settings().avg == 1);
  CHECK(rig.count(EventKind::CommandExecuted) == 0);
}

TEST_CASE("R16 once: a repeated command gets the cached reply and is not executed again") {
  Rig rig(1);
  rig.take_lines();
  const std::string line = command("set_interval", 5, ",\"value\":250");
  rig.feed(line, 1000);
  const std::vector<std::string> first = rig.take_lines();
  rig.feed(line, 1500);
  const std::vector<std::string> second = rig.take_lines();
  CHECK(first == std::vector<std::string>{frame("{\"ack\":5,\"result\":\"ok\"}")});
  CHECK(second == first);
  CHECK(rig.count(EventKind::CommandExecuted) == 1);
  CHECK(rig.device.settings().interval_ms == 250);
}

TEST_CASE("R16 once: a refusal is cached too") {
  Rig rig(1);
  rig.take_lines();
  const std::string line = command("set_interval", 6, ",\"value\":5");
  rig.feed(line, 1000);
  rig.feed(line, 1100);
  const std::vector<std::string> lines = rig.take_lines();
  CHECK(lines == std::vector<std::string>(2, frame("{\"nack\":6,\"err\":\"range\"}")));
  CHECK(rig.count(EventKind::CommandExecuted) == 1);
}

TEST_CASE("R17 stale: a seq older than the last executed is refused, not executed") {
  Rig rig(1);
  rig.feed(command("ping", 10), 1000);
  rig.take_lines();
  rig.feed(command("set_avg", 9, ",\"value\":2"), 1100);
  CHECK(rig.take_lines() == std::vector<std::string>{frame("{\"nack\":9,\"err\":\"stale\"}")});
  CHECK(rig.device.settings().avg == 1);
  CHECK(rig.count(EventKind::CommandExecuted) == 1);
}

TEST_CASE("R17 stale: seqs compare modulo 2^32") {
  Rig rig(1);
  rig.feed(command("ping", 4294967295u), 1000);
  rig.feed(command("ping", 0), 1000);  // after 2^32 - 1 comes 0: new, not stale
  rig.take_lines();
  CHECK(rig.count(EventKind::CommandExecuted) == 2);
}

TEST_CASE("R18 boot: a command for another boot is refused with boot, not executed") {
  Rig rig(2);
  rig.take_lines();
  rig.feed(command("set_avg", 3, ",\"value\":4", 1), 1000);
  CHECK(rig.take_lines() == std::vector<std::string>{frame("{\"nack\":3,\"err\":\"boot\"}")});
  CHECK(rig.device.settings().avg == 1);
  CHECK(rig.count(EventKind::CommandExecuted) == 0);
  rig.feed(command("set_avg", 3, ",\"value\":4", 2), 1000);  // the same seq, this boot
  CHECK(rig.device.settings().avg == 4);
}
