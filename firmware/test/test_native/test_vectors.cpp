// Every vector of tests/vectors/ gives in C++ what it gives in Python (tests/test_vectors.py):
// host-to-device lines decode to the same message or error kind, the device writes the
// canonical device-to-host lines byte for byte, and each command vector leaves a fresh device
// with the same reply and settings.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.h"

using json = nlohmann::json;
using powerlink::Err;
using powerlink::JsonBody;

namespace {

// The directory of the protocol vectors, and where it came from: $POWERHIL_VECTORS_DIR if
// set, else the POWERHIL_VECTORS_DIR the build defines (firmware.mk and platformio.ini give the
// checkout's tests/vectors/ as an absolute path), else tests/vectors under the working directory.
std::string vectors_dir(std::string* origin) {
  const char* env = std::getenv("POWERHIL_VECTORS_DIR");
  if (env != nullptr && *env != '\0') {
    *origin = "POWERHIL_VECTORS_DIR in the environment";
    return env;
  }
#ifdef POWERHIL_VECTORS_DIR
  *origin = "POWERHIL_VECTORS_DIR defined at build time";
  return POWERHIL_VECTORS_DIR;
#else
  *origin = "tests/vectors under the working directory";
  return "tests/vectors";
#endif
}

// The vector file NAME, read on first use. Only a test calls it, so a missing or unreadable file
// fails that test with the path it tried, and the program still runs the others.
const json& load_vectors(const std::string& name, json* cache) {
  if (cache->is_null()) {
    std::string origin;
    const std::string path = vectors_dir(&origin) + "/" + name;
    std::ifstream in(path);
    if (!in) {
      FAIL("protocol vectors not found: cannot read " << path << " (the directory is " << origin
                                                       << "); set POWERHIL_VECTORS_DIR in the "
                                                          "environment to the checkout's "
                                                          "tests/vectors");
    }
    *cache = json::parse(in);
  }
  return *cache;
}

const json& frames() {
  static json cache;
  return load_vectors("frames.json", &cache);
}

const json& commands() {
  static json cache;
  return load_vectors("commands.json", &cache);
}

// A line of a vector: "line", or the bytes of "line_hex".
std::string vector_line(const json& vector) {
  if (vector.contains("line")) return vector["line"].get<std::string>();
  const std::string hex = vector["line_hex"].get<std::string>();
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return bytes;
}

// The Err whose protocol name is `name`.
Err err_named(const std::string& name) {
  for (uint8_t e = 1; e <= static_cast<uint8_t>(Err::Stale); ++e) {
    if (name == powerlink::err_name(static_cast<Err>(e))) return static_cast<Err>(e);
  }
  FAIL("no error kind " << name);
  return Err::None;
}

// The JSON of a device line's body.
json body_json(const std::string& line) { return json::parse(test::body_of(line)); }

// Check and decode a host-to-device line: the error kind's name, or "" with the message.
std::string decode_h2d(const std::string& line, JsonBody* body, powerlink::HostMessage* msg) {
  Err err = powerlink::check_frame(line.data(), line.size(), body);
  if (err == Err::None) err = powerlink::decode_host_message(*body, msg);
  return err == Err::None ? "" : powerlink::err_name(err);
}

// A command's arguments as JSON: every key but cmd, seq and boot.
json arguments(const JsonBody& body) {
  json args = json::object();
  for (uint8_t i = 0; i < body.key_count(); ++i) {
    if (body.key_id(i, powerlink::kKeyNames, powerlink::kAck) <= powerlink::kBoot) continue;
    uint8_t len;
    const uint8_t off = body.key_at(i, &len);
    const auto at = static_cast<uint8_t>(body.value_of_key(i));
    args[std::string(body.text() + off, len)] =
        json::parse(std::string(body.text() + at, body.value_len(at)));
  }
  return args;
}

uint16_t volts(const json& v) { return static_cast<uint16_t>(std::lround(v.get<double>() * 1000)); }
int32_t amps(const json& v) { return static_cast<int32_t>(std::lround(v.get<double>() * 10000)); }
uint32_t watts(const json& v) { return static_cast<uint32_t>(std::lround(v.get<double>() * 1000)); }

powerlink::Status status_named(const std::string& name) {
  for (uint8_t s = 0; s <= static_cast<uint8_t>(powerlink::Status::I2c); ++s) {
    if (name == powerlink::status_name(static_cast<powerlink::Status>(s))) {
      return static_cast<powerlink::Status>(s);
    }
  }
  FAIL("no status " << name);
  return powerlink::Status::Ok;
}

// The device's line for a device-to-host vector's value.
std::string render(const std::string& kind, const json& v) {
  powerlink::OutLine line;
  if (kind == "sample") {
    line.kind = powerlink::LineKind::Sample;
    powerlink::SampleRecord& r = line.sample;
    r.seq = v["seq"];
    r.boot = v["boot"];
    r.dt = v["dt"];
    r.values.ts = v["ts"];
    r.values.n = v["n"];
    r.values.v_mv = volts(v["v"]);
    r.values.vmin_mv = volts(v["vmin"]);
    r.values.vmax_mv = volts(v["vmax"]);
    r.values.a_100ua = amps(v["a"]);
    r.values.amax_100ua = amps(v["amax"]);
    r.values.w_mw = watts(v["w"]);
    r.values.status = status_named(v["status"]);
  } else if (kind == "hello") {
    line.kind = powerlink::LineKind::Hello;
    powerlink::HelloRecord& h = line.hello;
    REQUIRE(v["fw"] == POWERLINK_FW_VERSION);
    REQUIRE(v["win"] == powerlink::kWindow);
    h.boot = v["boot"];
    h.seq = v["seq"];
    h.interval_ms = v["interval"];
    h.has_cmd = v["cmd"].get<int64_t>() >= 0;
    h.last_cmd = h.has_cmd ? v["cmd"].get<uint32_t>() : 0;
    h.has_ack = !v["ack"].is_null();
    h.ack = h.has_ack ? v["ack"].get<uint32_t>() : 0;
  } else {
    line.kind = powerlink::LineKind::Reply;
    powerlink::ReplyRecord& r = line.reply;
    r.unreadable = v["seq"].get<int64_t>() == -1;
    r.seq = r.unreadable ? 0 : v["seq"].get<uint32_t>();
    r.err = v["err"].is_null() ? Err::None : err_named(v["err"]);
  }
  char out[powerlink::kMaxLine];
  const uint8_t len = powerlink::render_line(line, out);
  return std::string(out, len);
}

// The checks after the frame layer's, which a device never runs on device-to-host lines.
bool is_message_kind(const std::string& kind) {
  return kind == "unknown_message" || kind == "missing_field" || kind == "bad_type" ||
         kind == "out_of_range";
}

}  // namespace

TEST_CASE("CRC-16/CCITT-FALSE check values") {
  for (const json& v : frames()["crc"]) {
    const std::string data = v["data"];
    char hex[5];
    std::snprintf(hex, sizeof hex, "%04X", powerlink::crc16(data.data(), data.size()));
    CHECK(hex == v["crc"].get<std::string>());
  }
}

TEST_CASE("valid host-to-device vectors decode to their message") {
  for (const json& v : frames()["valid"]) {
    if (v["dir"] != "h2d") continue;
    CAPTURE(v["name"].get<std::string>());
    JsonBody body;  // it reads the line: the line must outlive it
    powerlink::HostMessage msg;
    const std::string line = vector_line(v) + "\n";
    REQUIRE(decode_h2d(line, &body, &msg) == "");
    const json& value = v["value"];
    const std::string kind = v["kind"];
    if (kind == "ack") {
      CHECK(msg.kind == powerlink::HostKind::Ack);
      CHECK(msg.seq == value["seq"]);
      CHECK(msg.boot == value["boot"]);
    } else if (kind == "nack") {
      CHECK(msg.kind == powerlink::HostKind::Nack);
      CHECK(std::vector<uint32_t>(msg.nack, msg.nack + msg.nack_count) == value["seqs"]);
      CHECK(msg.boot == value["boot"]);
    } else {
      REQUIRE(kind == "command");
      CHECK(msg.kind == powerlink::HostKind::Command);
      CHECK(std::string(body.text() + msg.name_off, msg.name_len) == value["name"]);
      CHECK(msg.seq == value["seq"]);
      CHECK(msg.has_boot == !value["boot"].is_null());
      if (msg.has_boot) CHECK(msg.boot == value["boot"]);
      CHECK(arguments(body) == value["args"]);
    }
  }
}

TEST_CASE("invalid host-to-device vectors give their error kind") {
  for (const json& v : frames()["invalid"]) {
    if (v["dir"] != "h2d") continue;
    CAPTURE(v["name"].get<std::string>());
    JsonBody body;
    powerlink::HostMessage msg;
    const std::string line = vector_line(v) + "\n";
    CHECK(decode_h2d(line, &body, &msg) == v["error"]);
  }
}

TEST_CASE("a device answers an unreadable host line with its error kind") {
  for (const json& v : frames()["invalid"]) {
    if (v["dir"] != "h2d") continue;
    CAPTURE(v["name"].get<std::string>());
    test::Rig rig(17);
    rig.take_lines();  // the boot hello
    rig.feed(vector_line(v) + "\n", 10);
    const std::vector<std::string> lines = rig.take_lines();
    REQUIRE(lines.size() == 1);
    CHECK(body_json(lines[0]) == json({{"nack", -1}, {"err", v["error"]}}));
    CHECK(rig.count(powerlink::EventKind::CorruptFrame) == 1);
  }
}

TEST_CASE("canonical device-to-host vectors are written byte for byte") {
  int written = 0;
  for (const json& v : frames()["valid"]) {
    const std::string kind = v["kind"];
    if (v["dir"] != "d2h" || !v["canonical"].get<bool>() || kind == "log") continue;
    CAPTURE(v["name"].get<std::string>());
    CHECK(render(kind, v["value"]) == vector_line(v) + "\n");
    ++written;
  }
  CHECK(written >= 10);
}

TEST_CASE("device-to-host vectors pass or fail the frame layer as in Python") {
  // A device checks only frames; the message checks of device lines belong to the host.
  for (const json& v : frames()["valid"]) {
    if (v["dir"] != "d2h" || v["kind"] == "log") continue;
    CAPTURE(v["name"].get<std::string>());
    JsonBody body;
    const std::string line = vector_line(v) + "\n";
    CHECK(powerlink::check_frame(line.data(), line.size(), &body) == Err::None);
  }
  for (const json& v : frames()["invalid"]) {
    if (v["dir"] != "d2h") continue;
    CAPTURE(v["name"].get<std::string>());
    JsonBody body;
    const std::string line = vector_line(v) + "\n";
    const Err err = powerlink::check_frame(line.data(), line.size(), &body);
    if (err == Err::None) {
      CHECK(is_message_kind(v["error"]));
    } else {
      CHECK(powerlink::err_name(err) == v["error"].get<std::string>());
    }
  }
}

TEST_CASE("the longest valid vector line is the protocol's limit") {
  size_t longest = 0;
  for (const json& v : frames()["valid"]) longest = std::max(longest, vector_line(v).size() + 1);
  CHECK(longest == powerlink::kMaxLine);
  CHECK(frames()["max_line"] == powerlink::kMaxLine);
}

TEST_CASE("command vectors on a freshly booted device") {
  const json& defaults = commands()["defaults"];
  powerlink::Settings fresh;
  CHECK(fresh.interval_ms == defaults["interval_ms"]);
  CHECK(fresh.avg == defaults["avg"]);
  CHECK(fresh.uv_mv == volts(defaults["uv"]));
  for (const json& c : commands()["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    test::Rig rig(0);
    rig.take_lines();
    rig.feed(c["line"].get<std::string>() + "\n", 10);
    const std::vector<std::string> lines = rig.take_lines();
    REQUIRE(lines.size() == 1);
    const json reply = body_json(lines[0]);
    if (c["reply"] == "ok") {
      CHECK(reply == json({{"ack", 1}, {"result", "ok"}}));
    } else {
      CHECK(reply == json({{"nack", 1}, {"err", c["reply"]}}));
    }
    const json& want = c["settings"];
    const powerlink::Settings& s = rig.device.settings();
    CHECK(s.interval_ms == want["interval_ms"]);
    CHECK(s.uv_mv == volts(want["uv"]));
    CHECK(s.oc_100ua == static_cast<uint32_t>(amps(want["oc"])));
    CHECK(s.op_mw == watts(want["op"]));
    CHECK(s.avg == want["avg"]);
    CHECK(rig.count(powerlink::EventKind::CommandExecuted) == 1);
  }
}
