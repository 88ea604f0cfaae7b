#include "pl_device.h"

#include <string.h>

#include "pl_commands.h"

namespace powerlink {

namespace {

uint8_t slot_bit(uint32_t seq) { return static_cast<uint8_t>(1u << (seq % kWindow)); }

// 64-bit arithmetic is bulky on AVR (libgcc's routines and gcc's inline 64-bit code alike):
// sums are two 32-bit words, handled in these two functions only.

// *sum += x * n, or -= when `subtract` (two's complement).
void accumulate(Sum* sum, uint32_t x, uint32_t n, bool subtract) __attribute__((noinline));
void accumulate(Sum* sum, uint32_t x, uint32_t n, bool subtract) {
  uint32_t term_lo = x;
  uint32_t term_hi = 0;
  for (; n != 0; n >>= 1) {  // shift and add
    if (n & 1u) {
      if (subtract) {
        sum->hi -= term_hi + (sum->lo < term_lo ? 1u : 0u);
        sum->lo -= term_lo;
      } else {
        sum->lo += term_lo;
        sum->hi += term_hi + (sum->lo < term_lo ? 1u : 0u);
      }
    }
    term_hi = (term_hi << 1) | (term_lo >> 31);
    term_lo <<= 1;
  }
}

// The mean of n values summing to *sum (two's complement when `is_signed`), to the nearest
// step with halves away from zero, limited to +-(2^31 - 1); 0 when there are none.
int32_t mean(const Sum* sum, uint32_t n, bool is_signed) __attribute__((noinline));
int32_t mean(const Sum* sum, uint32_t n, bool is_signed) {
  if (n == 0) return 0;
  const bool negative = is_signed && (sum->hi >> 31) != 0;
  uint32_t lo = sum->lo;
  uint32_t hi = sum->hi;
  if (negative) {
    lo = ~lo + 1;
    hi = ~hi + (lo == 0 ? 1u : 0u);
  }
  lo += n / 2;
  if (lo < n / 2) ++hi;
  if (hi >= n) return negative ? -0x7FFFFFFF : 0x7FFFFFFF;  // the quotient needs 33 bits
  // Long division of hi:lo by n: lo shifts out the dividend and in the quotient.
  for (uint8_t i = 0; i < 32; ++i) {
    const bool carry = (hi >> 31) != 0;
    hi = (hi << 1) | (lo >> 31);
    lo <<= 1;
    if (carry || hi >= n) {
      hi -= n;
      lo |= 1u;
    }
  }
  const int32_t m = lo > 0x7FFFFFFFul ? 0x7FFFFFFF : static_cast<int32_t>(lo);
  return negative ? -m : m;
}

int32_t clamp(int32_t x, int32_t lo, int32_t hi) __attribute__((noinline));
int32_t clamp(int32_t x, int32_t lo, int32_t hi) { return x < lo ? lo : x > hi ? hi : x; }

Status worse(Status a, Status b) { return a > b ? a : b; }

}  // namespace

template <class E>
void BasicDevice<E>::begin(uint16_t boot, const Settings& settings, uint32_t first_seq) {
  settings_ = settings;
  memset(&s_, 0, sizeof s_);
  s_.boot = boot;
  s_.base = s_.next = first_seq;
  s_.rto = kRtoMs;
  queue_reply(kBootHello, 0, Err::None);
}

template <class E>
void BasicDevice<E>::emit(EventKind kind, uint32_t seq, Err err, uint8_t len) const {
  if (!E::kEnabled) return;
  Event e = Event();
  e.kind = kind;
  e.seq = seq;
  e.err = err;
  e.line = s_.rx;
  e.len = len;
  events_.emit(e);
}

template <class E>
void BasicDevice<E>::resent(ResendCause cause, const uint32_t* seqs, uint8_t count) const {
  if (!E::kEnabled) return;
  Event e = Event();
  e.kind = EventKind::Resent;
  e.cause = cause;
  e.count = count;
  e.seqs = seqs;
  events_.emit(e);
}

template <class E>
void BasicDevice<E>::corrupt(Err kind, uint8_t len) {
  queue_reply(kUnreadable, 0, kind);  // R15
  emit(EventKind::CorruptFrame, 0, kind, len);
}

// --- input ------------------------------------------------------------------------------------

template <class E>
void BasicDevice<E>::add(const Readings& r, uint32_t now) {
  Pending& p = s_.pending;
  if (r.n == 0) {
    p.failed = true;
  } else {
    const bool first = p.n == 0;
    p.n = r.n > 0xFFFFFFFFul - p.n ? 0xFFFFFFFFul : p.n + r.n;
    const bool negative = r.a_100ua < 0;
    const uint32_t a = static_cast<uint32_t>(r.a_100ua);
    accumulate(&p.vsum, r.v_mv, r.n, false);
    accumulate(&p.asum, negative ? 0u - a : a, r.n, negative);
    accumulate(&p.wsum, r.w_mw, r.n, false);
    if (first || r.vmin_mv < p.vmin_mv) p.vmin_mv = r.vmin_mv;
    if (first || r.vmax_mv > p.vmax_mv) p.vmax_mv = r.vmax_mv;
    if (first || r.amax_100ua > p.amax_100ua) p.amax_100ua = r.amax_100ua;
    p.severity = worse(p.severity, settings_.status_of(r.vmin_mv, r.amax_100ua, r.wmax_mw));
  }
  if (r.fault == Fault::Ovf) p.severity = worse(p.severity, Status::Ovf);
  if (r.fault == Fault::I2c) p.severity = Status::I2c;
  tick(now);
}

template <class E>
void BasicDevice<E>::receive(const char* data, size_t len, uint32_t now) {
  for (size_t i = 0; i < len; ++i) {
    // A pause inside a line means its LF was lost (LINE_IDLE).
    if ((s_.rx_len > 0 || s_.rx_overflow) && now - s_.rx_last > kLineIdleMs) {
      s_.rx_len = 0;
      s_.rx_overflow = false;
      corrupt(Err::Incomplete, 0);
    }
    s_.rx_last = now;
    const char c = data[i];
    if (c == '\n') {
      if (s_.rx_overflow) {
        corrupt(Err::TooLong, 0);
      } else {
        on_line(s_.rx_len, now);
      }
      s_.rx_len = 0;
      s_.rx_overflow = false;
    } else if (s_.rx_overflow) {
      // longer than kMaxLine with its LF: dropped as it comes, counted at its LF
    } else if (s_.rx_len < sizeof s_.rx) {
      s_.rx[s_.rx_len++] = c;
    } else {
      s_.rx_overflow = true;
    }
  }
  tick(now);
}

template <class E>
void BasicDevice<E>::on_line(uint8_t len, uint32_t now) {
  uint8_t i = 0;
  while (i < len && s_.rx[i] == '\r') ++i;
  if (i == len || s_.rx[0] == '#') return;  // an empty line, or a log line for people
  JsonBody body;
  HostMessage msg;
  Err err = check_frame(s_.rx, len, &body);
  if (err == Err::None) err = decode_host_message(body, &msg);
  if (err != Err::None) {
    corrupt(err, len);
  } else if (msg.kind == HostKind::Command) {
    on_command(body, msg, len, now);
  } else if (msg.boot == s_.boot) {  // ACKs and NACKs of another boot are ignored
    if (msg.kind == HostKind::Ack) {
      on_ack(msg.seq, now);
    } else {
      on_nack(msg);
    }
  }
}

template <class E>
bool BasicDevice<E>::in_window(uint32_t seq) const {
  return seq_diff(seq, s_.base) >= 0 && seq_diff(seq, s_.next) < 0;
}

template <class E>
uint8_t BasicDevice<E>::window_mask() const {
  const uint16_t run = static_cast<uint16_t>(((1u << window_count()) - 1) << (s_.base % kWindow));
  return static_cast<uint8_t>(run | (run >> kWindow));
}

template <class E>
void BasicDevice<E>::restart_rto(uint32_t now) {
  s_.rto = kRtoMs;
  s_.rto_armed = s_.base != s_.next;
  s_.rto_deadline = now + s_.rto;
}

template <class E>
void BasicDevice<E>::on_ack(uint32_t seq, uint32_t now) {
  if (!in_window(seq)) return;  // never sent, or old (R3)
  for (uint8_t k = static_cast<uint8_t>(seq - s_.base); k != 0xFF; --k) {
    s_.base_start = s_.window[s_.base % kWindow].ts;
    s_.to_send &= static_cast<uint8_t>(~slot_bit(s_.base));
    ++s_.base;
  }
  restart_rto(now);  // ACK progress (R5)
}

template <class E>
void BasicDevice<E>::on_nack(const HostMessage& msg) {
  uint32_t seqs[kMaxNackSeqs];
  uint8_t count = 0;
  for (uint8_t i = 0; i < msg.nack_count; ++i) {
    if (in_window(msg.nack[i])) {
      s_.to_send |= slot_bit(msg.nack[i]);  // R4
      seqs[count++] = msg.nack[i];
    }
  }
  if (count != 0) resent(ResendCause::Nack, seqs, count);
}

template <class E>
void BasicDevice<E>::on_command(const JsonBody& body, const HostMessage& msg, uint8_t len,
                                uint32_t now) {
  if (msg.has_boot && msg.boot != s_.boot) {
    queue_reply(kReply, msg.seq, Err::Boot);  // meant for an earlier boot (R18)
  } else if (is_hello(body, msg)) {
    // A sync point, always answered and never cached (R12, R20); the new host has seen none
    // of the window.
    queue_reply(kHelloAck, msg.seq, Err::None);
    if (s_.base != s_.next) {
      s_.to_send = window_mask();
      restart_rto(now);
    }
  } else if (s_.has_last_cmd && msg.seq == s_.last_cmd) {
    queue_reply(kReply, s_.last_cmd, s_.last_err);  // a repeat: the cached reply (R16)
  } else if (s_.has_last_cmd && seq_diff(msg.seq, s_.last_cmd) < 0) {
    queue_reply(kReply, msg.seq, Err::Stale);  // a late copy (R17)
  } else {
    const Err err = run_command(body, msg, &settings_);
    s_.has_last_cmd = true;
    s_.last_cmd = msg.seq;
    s_.last_err = err;
    queue_reply(kReply, msg.seq, err);
    emit(EventKind::CommandExecuted, msg.seq, err, len);
  }
}

// --- timers -----------------------------------------------------------------------------------

template <class E>
void BasicDevice<E>::tick(uint32_t now) {
  s_.now = now;
  if (s_.rto_armed && seq_diff(now, s_.rto_deadline) >= 0) {
    // Go-back-N: after an outage every frame in the window is likely lost (R5).
    s_.rto = s_.rto >= kRtoMaxMs / 2 ? kRtoMaxMs : static_cast<uint16_t>(s_.rto * 2);
    s_.rto_deadline = now + s_.rto;
    s_.to_send = window_mask();
    if (E::kEnabled) {
      uint32_t seqs[kWindow];
      const uint8_t count = window_count();
      for (uint8_t k = 0; k < count; ++k) seqs[k] = s_.base + k;
      resent(ResendCause::Timeout, seqs, count);
    }
  }
  const Pending& p = s_.pending;
  if (now - p.start_ms >= settings_.interval_ms && !p.empty() && window_count() < kWindow) {
    close_sample(now);  // R2: otherwise the readings fold into it
  }
}

template <class E>
void BasicDevice<E>::close_sample(uint32_t now) {
  Pending& p = s_.pending;
  const uint32_t seq = s_.next++;
  SampleValues& e = s_.window[seq % kWindow];
  if (seq == s_.base) s_.base_start = p.start_ms;
  e.ts = now;
  e.n = p.n;
  e.status = p.severity;
  // At the wire's range and steps, with vmin <= v <= vmax and a <= amax; all 0 without a
  // reading (the pending sample holds zeros then).
  e.vmin_mv = static_cast<uint16_t>(clamp(p.vmin_mv, 0, kVoltsMaxMv));
  e.vmax_mv = static_cast<uint16_t>(clamp(p.vmax_mv, 0, kVoltsMaxMv));
  e.v_mv = static_cast<uint16_t>(clamp(mean(&p.vsum, p.n, false), e.vmin_mv, e.vmax_mv));
  e.amax_100ua = clamp(p.amax_100ua, -kAmpsMax, kAmpsMax);
  e.a_100ua = clamp(mean(&p.asum, p.n, true), -kAmpsMax, e.amax_100ua);
  e.w_mw = static_cast<uint32_t>(clamp(mean(&p.wsum, p.n, false), 0, kWattsMaxMw));
  s_.to_send |= slot_bit(seq);
  memset(&p, 0, sizeof p);
  p.start_ms = now;
  if (!s_.rto_armed) {
    s_.rto_armed = true;
    s_.rto_deadline = now + s_.rto;
  }
  emit(EventKind::SampleClosed, seq, Err::None, 0);
}

template <class E>
bool BasicDevice<E>::next_deadline(uint32_t* at) const {
  bool timed = s_.rto_armed;
  *at = s_.rto_deadline;
  if (window_count() < kWindow) {
    // The interval's end, if a sample can close then (it needs a reading).
    const uint32_t end = s_.pending.start_ms + settings_.interval_ms;
    if (!s_.pending.empty() || seq_diff(end, s_.now) > 0) {
      if (!timed || seq_diff(end, *at) < 0) *at = end;
      timed = true;
    }
  }
  return timed;
}

// --- output -----------------------------------------------------------------------------------

template <class E>
void BasicDevice<E>::queue_reply(ReplyKind kind, uint32_t seq, Err err) {
  if (s_.reply_count == kReplyQueue) return;  // the host times out and asks again
  QueuedReply& r = s_.replies[s_.reply_count++];
  r.kind = kind;
  r.seq = seq;
  r.err = err;
}

template <class E>
bool BasicDevice<E>::has_output() const {
  return s_.line.kind != LineKind::None || s_.reply_count > 0 || s_.to_send != 0;
}

template <class E>
void BasicDevice<E>::sample_record(uint32_t seq, SampleRecord* r) const {
  r->values = s_.window[seq % kWindow];
  r->seq = seq;
  r->boot = s_.boot;
  r->dt = r->values.ts - (seq == s_.base ? s_.base_start : s_.window[(seq - 1) % kWindow].ts);
}

template <class E>
uint8_t BasicDevice<E>::sample_line(uint32_t seq, char* out) const {
  OutLine line;
  line.kind = LineKind::Sample;
  sample_record(seq, &line.sample);
  return render_line(line, out);
}

template <class E>
void BasicDevice<E>::start_line() {
  OutLine& line = s_.line;
  const uint8_t mask = s_.to_send;
  if (s_.reply_count > 0) {
    const QueuedReply r = s_.replies[0];
    --s_.reply_count;
    for (uint8_t i = 0; i < s_.reply_count; ++i) s_.replies[i] = s_.replies[i + 1];
    if (r.kind <= kHelloAck) {
      line.kind = LineKind::Hello;
      HelloRecord& h = line.hello;
      h.boot = s_.boot;
      h.seq = s_.base;
      h.has_cmd = s_.has_last_cmd;
      h.last_cmd = s_.last_cmd;
      h.interval_ms = settings_.interval_ms;
      h.has_ack = r.kind == kHelloAck;
      h.ack = r.seq;
    } else {
      line.kind = LineKind::Reply;
      line.reply.unreadable = r.kind == kUnreadable;
      line.reply.seq = r.seq;
      line.reply.err = r.err;
    }
  } else {
    uint32_t seq = s_.base;
    while (seq != s_.next && (mask & slot_bit(seq)) == 0) ++seq;  // the oldest due
    if (seq == s_.next) return;
    s_.to_send &= static_cast<uint8_t>(~slot_bit(seq));
    line.kind = LineKind::Sample;
    sample_record(seq, &line.sample);  // a copy: an ACK may free its place meanwhile
  }
  s_.line_crc = line_crc(line, &s_.line_len);
  s_.line_pos = 0;
}

template <class E>
uint8_t BasicDevice<E>::line_bytes() {
  if (s_.line.kind == LineKind::None) start_line();
  return s_.line.kind == LineKind::None ? 0 : static_cast<uint8_t>(s_.line_len - s_.line_pos);
}

template <class E>
uint8_t BasicDevice<E>::read(char* out, uint8_t max) {
  const uint8_t left = line_bytes();
  if (left == 0) return 0;
  const uint8_t n = render_part(s_.line, s_.line_crc, s_.line_pos, out, max < left ? max : left);
  s_.line_pos = static_cast<uint8_t>(s_.line_pos + n);
  if (s_.line_pos >= s_.line_len) s_.line.kind = LineKind::None;
  return n;
}

template class BasicDevice<NoEvents>;
template class BasicDevice<HookEvents>;

}  // namespace powerlink
