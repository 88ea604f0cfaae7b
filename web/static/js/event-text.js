// What an event says, in words, after its kind's badge (the live feed and the run page's
// events): the text never repeats the kind, so "[power] on · boot 1" reads as "power on".
import { fmt } from "./common.js";

const DIRECTION = { to_device: "to the device", to_host: "to the host", both: "both ways" };

function number(v) {
  return typeof v === "number" ? fmt(v, Number.isInteger(v) ? 0 : 3) : v;
}

/** The fields of an event no sentence below covers: "key value · key value". */
function fields(data) {
  return Object.entries(data || {})
    .filter(([, v]) => v != null && v !== "")
    .map(([k, v]) => `${k.replaceAll("_", " ")} ${typeof v === "object" ? JSON.stringify(v) : number(v)}`)
    .join(" · ");
}

/** A power event: boot is the new boot counter when the device came up, null when it lost
 * power; cause is the target's word for why ("power on", "brownout", "brownout over", "reset"). */
function power(d) {
  if (d.boot == null) return `off (${d.cause})`;
  return d.cause === "power on" ? `on · boot ${d.boot}` : `on after ${d.cause.replace(/ over$/, "")} · boot ${d.boot}`;
}

function command(d) {
  const args = d.args && Object.keys(d.args).length
    ? ` ${Object.entries(d.args).map(([k, v]) => `${k}=${v}`).join(" ")}` : "";
  const latency = d.latency == null ? "" : ` in ${Math.round(d.latency * 1000)} ms`;
  return `${d.name}${args} ${d.state}${latency}${d.reason ? ` (${d.reason})` : ""}`;
}

/** A bench supply's event: its opening (who, which limits) or a setting it acknowledged. */
function supply(d) {
  if (d.what === "opened") return `${d.name}: ${d.identity}${d.by_hand ? " (applied by hand)" : ""} · ${d.limits_text}`;
  const value = d.what === "output" ? `output ${d.value ? "on" : "off"}`
    : d.what === "current_limit" ? `current limit ${fmt(d.value, 3)} A` : `${fmt(d.value, 3)} V`;
  const point = d.point == null ? "" : ` (supply[${d.point}])`;
  return `${value}${point}${d.by_hand ? "" : ` · took ${Math.round(d.latency * 1000)} ms`}`;
}

const TEXT = {
  run: (d) => {
    if (d.state === "started") return `started · ${d.scenario} on ${d.target}${d.seed == null ? "" : ` · seed ${d.seed}`}`;
    return d.state === "ended" ? `ended: ${d.verdict}` : d.state;
  },
  power,
  hello: (d) => `firmware ${d.fw} · boot ${d.boot} · interval ${d.interval} ms`,
  reset: (d) => `boot ${d.old_boot} → ${d.new_boot} · ${d.lost} samples lost`,
  alert: (d) => `${d.status} · vmin ${fmt(d.v, 3)} V · amax ${fmt(d.a, 4)} A`,
  command,
  step: (d) => `${d.number}: ${d.name}`,
  expectation: (d) => `${d.state.toUpperCase()} ${d.label}${d.detail ? ` · ${d.detail}` : ""}`,
  gap: (d) => `seq ${d.seqs.join(", ")} missing`,
  log: (d) => `device says: ${d.text}`,
  store: (d) => d.message,
  fault: (d) => `${d.fault} ${d.what}${d.seq == null ? "" : ` seq ${d.seq}`} ${DIRECTION[d.direction] ?? d.direction}`,
  corrupt: (d) => `frame dropped: ${d.error.replaceAll("_", " ")}`,
  retransmission: (d) => `seq ${d.seq} sent again (boot ${d.boot})`,
  duplicate: (d) => `seq ${d.seq} dropped, already had it (boot ${d.boot})`,
  viewer: (d) => `live view closed (run ${d.verdict ?? "ended"})`,
  supply,
  announcement: (d) => d.text,
  device: (d) => (d.state === "ended" ? `link ended: ${d.why} · the other devices go on` : d.state),
  sensor: (d) => (d.state === "over_max" ? `rail ${fmt(d.volts, 2)} V is above what the INA219 measures`
    : `rail back within what the INA219 measures (${fmt(d.volts, 2)} V)`),
};

export function eventText(e) {
  const text = TEXT[e.kind];
  try {
    return text ? text(e.data || {}) : fields(e.data);
  } catch {
    return fields(e.data); // a field the sentence needs is missing: say what there is
  }
}

/**
 * The device says hello when it boots and again in answer to the host's `hello` (the sync
 * point the host sends on connecting), with the same firmware, boot and interval: both are
 * logged. A hello is worth listing only when it says something the last one did not.
 */
export class HelloFilter {
  constructor() {
    this.last = null;
  }

  /** Whether e repeats the previous hello seen (events are given in time order). */
  repeats(e) {
    if (e.kind !== "hello") return false;
    const d = e.data || {};
    const key = JSON.stringify([d.fw, d.boot, d.interval, d.win]);
    const same = key === this.last;
    this.last = key;
    return same;
  }

  reset() {
    this.last = null;
  }
}
