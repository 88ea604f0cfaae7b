// The device end of a protocol v1 link, sans-IO: no Arduino call, no heap, no clock. The
// application passes the time (ms since boot) with every call, adds readings, hands over the
// bytes it receives and sends what `read` gives. docs/protocol.md is the normative
// description; harness/link/device.py (DeviceLink) is the Python twin this mirrors.
#ifndef POWERLINK_PL_DEVICE_H
#define POWERLINK_PL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "pl_json.h"
#include "pl_messages.h"
#include "pl_types.h"

namespace powerlink {

enum class EventKind : uint8_t { SampleClosed, CommandExecuted, Resent, CorruptFrame };
enum class ResendCause : uint8_t { Nack, Timeout };

// What the link reports to an observer (the host test driver and tests).
struct Event {
  EventKind kind;
  uint32_t seq;          // SampleClosed: the sample; CommandExecuted: the command
  Err err;               // CommandExecuted: the reply (None: ok); CorruptFrame: the line's kind
  ResendCause cause;     // Resent
  uint8_t count;         // Resent: how many seqs
  const uint32_t* seqs;  // Resent: the seqs queued again
  const char* line;      // CommandExecuted, CorruptFrame: the line, no LF (empty if dropped)
  uint8_t len;
};

// Where events go, chosen at compile time: the firmware reports none, so it carries no code
// for them (an Uno's flash is the tightest budget the core has).
struct NoEvents {
  static const bool kEnabled = false;
  void emit(const Event&) const {}
};

typedef void (*EventHook)(void* context, const Event& event);

// A 64-bit sum as two words (see accumulate() and mean()).
struct Sum {
  uint32_t lo;
  uint32_t hi;
};

struct HookEvents {
  static const bool kEnabled = true;
  EventHook hook;
  void* context;
  HookEvents() : hook(0), context(0) {}
  void emit(const Event& e) const {
    if (hook != 0) hook(context, e);
  }
};

template <class Events>
class BasicDevice {
 public:
  // Boot (call it first): window empty, first sample `first_seq`, no command executed, a hello
  // queued.
  void begin(uint16_t boot, const Settings& settings = Settings(), uint32_t first_seq = 0);
  Events& events() { return events_; }

  // Fold readings taken up to `now` into the pending sample, then run the timers.
  void add(const Readings& readings, uint32_t now);
  // Bytes from the host (ACKs, NACKs, commands), then the timers.
  void receive(const char* data, size_t len, uint32_t now);
  // Run the timers: resend on timeout, close the pending sample at the end of its interval.
  void tick(uint32_t now);
  // When `tick` is next due; false if nothing is timed.
  bool next_deadline(uint32_t* at) const;

  // Output goes out a line at a time, rendered on demand (a line is never held whole).
  // Bytes left of the line going out, starting the next one (replies first, then the samples
  // due, oldest first) if none is; 0 when there is nothing to send.
  uint8_t line_bytes();
  // Whether a line has gone out in part: other text must wait for its end.
  bool line_started() const { return s_.line.kind != LineKind::None && s_.line_pos > 0; }
  // Copy up to `max` next bytes of the current line into `out`; returns how many.
  uint8_t read(char* out, uint8_t max);
  // Whether anything is waiting to go out.
  bool has_output() const;

  const Settings& settings() const { return settings_; }
  uint16_t boot() const { return s_.boot; }
  uint32_t window_base() const { return s_.base; }  // oldest seq not yet acknowledged
  uint32_t next_seq() const { return s_.next; }
  uint8_t window_count() const { return static_cast<uint8_t>(s_.next - s_.base); }
  // The line of a sample still in the window (kMaxLine bytes at out); returns its length.
  uint8_t sample_line(uint32_t seq, char* out) const;

 private:
  struct Pending {  // the sample being accumulated since start_ms
    uint32_t start_ms;
    uint32_t n;
    bool failed;
    Sum vsum;
    Sum asum;  // two's complement: current can be negative
    Sum wsum;
    uint16_t vmin_mv;
    uint16_t vmax_mv;
    int32_t amax_100ua;
    Status severity;
    bool empty() const { return n == 0 && !failed; }
  };
  // Replies wait as what to say, and are written when they go out: a hello then tells the
  // state of that moment.
  enum ReplyKind : uint8_t { kBootHello, kHelloAck, kReply, kUnreadable };
  struct QueuedReply {
    ReplyKind kind;
    Err err;
    uint32_t seq;
  };
  static const uint8_t kReplyQueue = 4;

  void on_line(uint8_t len, uint32_t now);
  void on_ack(uint32_t seq, uint32_t now);
  void on_nack(const HostMessage& msg);
  void on_command(const JsonBody& body, const HostMessage& msg, uint8_t len, uint32_t now);
  void queue_reply(ReplyKind kind, uint32_t seq, Err err);
  void corrupt(Err kind, uint8_t len);
  void close_sample(uint32_t now);
  void resent(ResendCause cause, const uint32_t* seqs, uint8_t count) const;
  void restart_rto(uint32_t now);
  bool in_window(uint32_t seq) const;
  uint8_t window_mask() const;
  void sample_record(uint32_t seq, SampleRecord* out) const;
  void start_line();
  void emit(EventKind kind, uint32_t seq, Err err, uint8_t len) const;

  // Everything begin() resets, zero unless it says otherwise (plain data: memset clears it).
  struct State {
    uint16_t boot;
    SampleValues window[kWindow];
    uint32_t base;
    uint32_t next;
    uint32_t base_start;  // the start (ts - dt) of sample `base`
    uint8_t to_send;      // window slots (seq % kWindow) due to go out
    Pending pending;
    uint16_t rto;
    bool rto_armed;
    uint32_t rto_deadline;
    bool has_last_cmd;
    uint32_t last_cmd;
    Err last_err;
    uint32_t now;
    QueuedReply replies[kReplyQueue];
    uint8_t reply_count;
    OutLine line;  // the line going out: a copy, so an ACK meanwhile cannot change it
    uint16_t line_crc;
    uint8_t line_len;
    uint8_t line_pos;
    char rx[kMaxLine - 1];  // an unfinished received line, LF not included
    uint8_t rx_len;
    bool rx_overflow;
    uint32_t rx_last;
  };

  Settings settings_;
  State s_;
  Events events_;
};

typedef BasicDevice<NoEvents> Device;            // the firmware's
typedef BasicDevice<HookEvents> ObservedDevice;  // reports to a hook

}  // namespace powerlink

#endif
