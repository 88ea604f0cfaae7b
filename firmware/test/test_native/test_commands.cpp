// The command parser refuses malformed input with the right error (docs/protocol.md §1.1, §7),
// and the line layer drops what is not a line (§1).
#include "support.h"

using test::frame;
using test::Rig;

namespace {

// What a device answers to one framed body: the body of its reply.
std::string answer(const std::string& body, Rig* rig) {
  rig->take_lines();
  rig->feed(frame(body), 100);
  const std::vector<std::string> lines = rig->take_lines();
  REQUIRE(lines.size() == 1);
  return test::body_of(lines[0]);
}

// ... of a freshly booted one (boot 0).
std::string answer(const std::string& body) {
  Rig rig(0);
  return answer(body, &rig);
}

std::string refused(int seq, const char* err) {
  return "{\"nack\":" + std::to_string(seq) + ",\"err\":\"" + err + "\"}";
}
const std::string kOk = R"({"ack":7,"result":"ok"})";

}  // namespace

TEST_CASE("command errors are checked in order: unknown, arg, range") {
  CHECK(answer(R"({"cmd":"reboot","seq":7})") == refused(7, "unknown"));
  CHECK(answer(R"({"cmd":"Ping","seq":7})") == refused(7, "unknown"));  // names are exact
  CHECK(answer(R"({"cmd":"set_intervl","value":-1,"seq":7})") == refused(7, "unknown"));
  // arg before range, whichever comes first in the line
  CHECK(answer(R"({"cmd":"set_threshold","uv":-1,"oc":"x","seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_threshold","oc":"x","uv":-1,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":5,"x":1,"seq":7})") == refused(7, "arg"));
}

TEST_CASE("a missing, unexpected or wrongly typed argument is arg") {
  CHECK(answer(R"({"cmd":"set_interval","seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_avg","seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_threshold","seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"ping","x":null,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"ping","ack":1,"seq":7})") == refused(7, "arg"));  // any other key
  CHECK(answer(R"({"cmd":"set_interval","val":500,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":"500","seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":true,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":null,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":[500],"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":500.0,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_interval","value":5e2,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_avg","value":4.0,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_threshold","uv":false,"seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_threshold","op":"1","seq":7})") == refused(7, "arg"));
  CHECK(answer(R"({"cmd":"set_threshold","value":1,"seq":7})") == refused(7, "arg"));
}

TEST_CASE("an argument outside its range is range") {
  CHECK(answer(R"({"cmd":"set_interval","value":9,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_interval","value":-0,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_interval","value":60001,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_interval","value":99999999999999999999,"seq":7})") ==
        refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_avg","value":0,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_avg","value":-4,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_avg","value":3,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_avg","value":256,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_threshold","uv":32.7681,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_threshold","uv":-0.0001,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_threshold","oc":1e400,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_threshold","oc":-1e400,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_threshold","op":1100.0000001,"seq":7})") == refused(7, "range"));
  CHECK(answer(R"({"cmd":"set_threshold","op":11e2,"uv":33,"seq":7})") == refused(7, "range"));
}

TEST_CASE("thresholds: any JSON number, kept at the wire's steps") {
  Rig rig(0);
  CHECK(answer(R"({"cmd":"set_threshold","uv":4.5e0,"oc":0.00015,"op":1.1e3,"seq":7})", &rig) ==
        kOk);
  const powerlink::Settings& s = rig.device.settings();
  CHECK(s.uv_mv == 4500);
  CHECK(s.oc_100ua == 1);  // 0.15 mA: finer digits dropped
  CHECK(s.op_mw == 1100000);
  CHECK(answer(R"({"cmd":"set_threshold","uv":32.768,"oc":-0.0,"op":1e-9,"seq":8})", &rig) ==
        R"({"ack":8,"result":"ok"})");
  CHECK(s.uv_mv == 32768);
  CHECK(s.oc_100ua == 0);  // -0.0 and 1e-9 are 0: off
  CHECK(s.op_mw == 0);
}

TEST_CASE("a refused command changes nothing, even its valid arguments") {
  Rig rig(0);
  CHECK(answer(R"({"cmd":"set_threshold","uv":4.5,"oc":40,"seq":7})", &rig) ==
        refused(7, "range"));
  CHECK(rig.device.settings().uv_mv == 0);
}

TEST_CASE("hello is answered with a hello, whatever else the line carries") {
  CHECK(answer(R"({"cmd":"hello","x":[1],"seq":3})") ==
        R"({"hello":"powerhil","fw":"1.0.0","boot":0,"seq":0,"interval":1000,"win":8,"cmd":-1,)"
        R"("ack":3})");
}

TEST_CASE("the frame's own fields are checked before the command's: the line is unreadable") {
  CHECK(answer(R"({"cmd":"","seq":7})") == refused(-1, "out_of_range"));
  CHECK(answer(R"({"cmd":"set_interval_longer","seq":7})") == refused(-1, "out_of_range"));
  CHECK(answer(R"({"cmd":"ping"})") == refused(-1, "missing_field"));
  CHECK(answer(R"({"cmd":"ping","seq":"7"})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"cmd":"ping","seq":7.0})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"cmd":"ping","seq":true})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"cmd":"ping","seq":-1})") == refused(-1, "out_of_range"));
  CHECK(answer(R"({"cmd":"ping","seq":4294967296})") == refused(-1, "out_of_range"));
  CHECK(answer(R"({"cmd":"ping","seq":7,"boot":65536})") == refused(-1, "out_of_range"));
  CHECK(answer(R"({"cmd":"ping","seq":7,"boot":null})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"cmd":null,"seq":7})") == refused(-1, "bad_type"));
}

TEST_CASE("JSON is checked as Python's json module does, with the protocol's restrictions") {
  CHECK(answer(R"( { "cmd" : "ping" , "seq" : 7 } )") == kOk);  // whitespace is fine
  CHECK(answer(R"({"seq":7,"cmd":"ping","extra":{"a":[1,2]}})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":{"a":1,"a":2}})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":[1,[2]]})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":[1,2.5]})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":[1,true]})") == refused(-1, "bad_type"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":[]})") == refused(7, "arg"));
  CHECK(answer(R"({"seq":7,"cmd":"ping",})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":07,"cmd":"ping"})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":1.})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":.5})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":1e})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":-})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":+1})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":Infinity})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":-Infinity})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":tru})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping"}{})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping")") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7 "cmd":"ping"})") == refused(-1, "bad_json"));
  CHECK(answer(R"({"seq":7,"cmd":"ping","x":"a\"})") == refused(-1, "bad_json"));
  CHECK(answer(R"("just a string")") == refused(-1, "bad_json"));
  CHECK(answer(R"({"x":1})") == refused(-1, "unknown_message"));
}

TEST_CASE("lines: CRLF accepted, empty and log lines ignored, long and idle ones dropped") {
  Rig rig(0);
  rig.take_lines();
  std::string line = frame(R"({"cmd":"ping","seq":7})");
  line.insert(line.size() - 1, "\r");
  rig.feed("\n\r\n# a log line from a terminal\n" + line, 100);
  CHECK(rig.take_lines() == std::vector<std::string>{frame(R"({"ack":7,"result":"ok"})")});

  rig.feed(std::string(191, 'x') + "\n", 200);  // 192 bytes with its LF: a line, not a frame
  rig.feed(std::string(192, 'x') + std::string(1000, 'y') + "\n", 200);  // too long: once
  CHECK(rig.take_lines() == std::vector<std::string>{frame(R"({"nack":-1,"err":"no_crc"})"),
                                                     frame(R"({"nack":-1,"err":"too_long"})")});

  rig.feed("{\"cmd\":\"pi", 300);  // its LF is lost: the next bytes come too late
  rig.feed(frame(R"({"cmd":"ping","seq":8})"), 801);
  CHECK(rig.take_lines() == std::vector<std::string>{frame(R"({"nack":-1,"err":"incomplete"})"),
                                                     frame(R"({"ack":8,"result":"ok"})")});
  rig.feed("{\"cmd\":\"pi", 900);  // not idle for more than 500 ms: the same line goes on
  rig.feed("ng\",\"seq\":9}*" + frame(R"({"cmd":"ping","seq":9})").substr(23), 1400);
  CHECK(rig.take_lines() == std::vector<std::string>{frame(R"({"ack":9,"result":"ok"})")});
}
