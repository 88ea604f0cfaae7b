// The live page: a panel per device (its numbers, link, the last minute's chart with a bench
// supply's readback, statistics and link health), the scenario's progress and the alerts feed,
// all from the /ws messages (hello, measurements, readback, stats, progress, events). A message
// carries everything the viewer had waiting for the page: every sample it holds names its
// device, and stats, progress and readbacks are by device name (`devices`). The hello lists the
// devices in the run's order; a device first seen in a message gets its panel then. The charts
// share one time axis (LiveCharts). A run of one device shows its panel without a name, as the
// page always looked.
import { LiveCharts } from "./charts.js";
import { $, badge, clock, connect, DIGITS, duration, el, fmt, ready } from "./common.js";
import { eventText, HelloFilter } from "./event-text.js";
import { Timeline } from "./timeline.js";

const FEED_MAX = 60;
const timeline = new Timeline($("#timeline"));
/** Device name -> its panel (Panel), in the run's order. */
const panels = new Map();
/** Device name -> the expectations and step its last progress message gave. */
const progress = new Map();
/** Device name -> the repeat filter of its hellos (each device says hello on its own). */
const hellos = new Map();
/** The newest progress message not shown yet (the scenario card is redrawn once a frame). */
let unshown = null;
const charts = new LiveCharts(60, () => {
  for (const panel of panels.values()) panel.showNumbers();
  if (unshown) showProgress(unshown);
  unshown = null;
});

function row(label, ...cells) {
  return el("tr", {}, el("th", { text: label }), ...cells.map((c) => el("td", { text: c })));
}

function several() {
  return panels.size > 1;
}

/** One device's panel: its nodes (by class, inside the panel) and its chart. */
class Panel {
  constructor(name, target) {
    this.name = name;
    this.node = $("#device-panel").content.firstElementChild.cloneNode(true);
    this.node.dataset.device = name;
    this.nodes = new Map();
    this.find(".device-name").textContent = name;
    this.find(".target").textContent = target;
    $("#devices").append(this.node);
    this.chart = charts.add(this.find(".live-chart"));
    this.lastBoot = null;
    this.pending = null; // the newest sample, shown at the next frame
  }

  /** The panel's node `selector` names (found once). */
  find(selector) {
    if (!this.nodes.has(selector)) this.nodes.set(selector, $(selector, this.node));
    return this.nodes.get(selector);
  }

  /** The last minute from the device's part of the hello (column-wise). */
  load(device) {
    this.chart.load(device.backlog, device.outliers, device.supply);
    this.find(".supply-key").hidden = !device.supply.t.length;
    const b = device.backlog;
    const n = b.t.length;
    if (n) {
      const i = n - 1;
      this.pending = {
        v: b.v[i], a: b.a[i], w: b.w[i], status: b.status[i], t: b.t[i], seq: "—", boot: "—", n: "—",
      };
    }
  }

  measurement(s, message) {
    if (this.lastBoot != null && (s.boot !== this.lastBoot || message.missed)) this.chart.gap(s.t - s.dt / 1000);
    this.lastBoot = s.boot;
    this.chart.push(s);
    this.pending = s;
  }

  readback(r) {
    this.find(".supply-key").hidden = false;
    this.chart.pushReadback(r);
  }

  /** The newest sample's numbers, once a frame however many samples came since. */
  showNumbers() {
    const s = this.pending;
    if (s == null) return;
    this.pending = null;
    for (const m of ["v", "a", "w"]) {
      const node = this.find(`.big.${m} .num`);
      node.textContent = fmt(s[m], DIGITS[m]);
      node.parentElement.classList.toggle("outlier", (s.outlier || []).includes(m));
    }
    badge(this.find(".status"), s.status, s.status === "ok" ? "ok" : "alarm");
    this.find(".sample-info").textContent = `seq ${s.seq} · boot ${s.boot} · ${clock(s.t)} · ${s.n} readings`;
  }

  stats(data, message) {
    const win = data.window;
    const minute = this.find(".minute tbody");
    minute.replaceChildren();
    for (const m of ["v", "a", "w"]) {
      const s = win ? win[m] : {};
      minute.append(row(m.toUpperCase(), fmt(s.min, DIGITS[m]), fmt(s.avg, DIGITS[m]), fmt(s.max, DIGITS[m])));
    }
    this.find(".minute-samples").textContent = win ? `${win.samples} samples` : "no samples yet";
    const moving = this.find(".moving tbody");
    moving.replaceChildren();
    for (const m of ["v", "a", "w"]) {
      const cells = ["1m", "5m", "15m"].map((k) => fmt(data.moving[k]?.[m], DIGITS[m]));
      moving.append(row(m.toUpperCase(), ...cells));
    }
    const covered = ["1m", "5m", "15m"].map((k) => duration(data.moving[k]?.seconds)).join(" / ");
    this.find(".moving-covered").textContent = `data held: ${covered}`;
    this.find(".wh").textContent = fmt(data.energy.wh, 4);
    this.find(".mah").textContent = fmt(data.energy.mah, 2);
    this.find(".energy-span").textContent =
      `over ${duration(data.energy.seconds)} of samples · outliers: ${data.outliers}`;
    this.showLink(data.link);
    this.showHealth(data.health, data.faults, data.store, message.client);
  }

  showLink(link) {
    badge(this.find(".link-state"), link.state, link.state);
    this.find(".link-state").title = link.error ?? "";
    this.find(".target").textContent = link.target;
    this.find(".fw").textContent = link.fw ?? "—";
    this.find(".boot").textContent = link.boot ?? "—";
    this.find(".interval").textContent = link.interval == null ? "—" : `${Math.round(link.interval * 1000)} ms`;
  }

  showHealth(h, faults, store, client) {
    const body = this.find(".health tbody");
    body.replaceChildren(
      row("frames/s", fmt(h.frames_per_s, 1)),
      row("samples", h.samples ?? "—"),
      row("retransmissions", h.retransmissions ?? "—"),
      row("NACKs sent", h.nacks_sent ?? "—"),
      row("corrupt frames", h.corrupt ?? "—"),
      row("duplicates dropped", h.duplicates_dropped ?? "—"),
      row("gaps", h.gaps ?? "—"),
      row("commands", h.commands_sent == null ? "—" : `${h.commands_done}/${h.commands_sent} (${h.commands_failed} failed)`),
    );
    // The store and the page's queue are the run's, not the device's: labelled so.
    if (store) body.append(row("run's stored rows", `${store.rows_written} (${store.pending} pending)`));
    if (client) body.append(row("this page missed (run)", `${client.missed} samples`));
    const f = this.find(".faults tbody");
    f.replaceChildren();
    const injected = faults.injected || {};
    const observed = faults.observed || {};
    const total = Object.values(injected).reduce((a, b) => a + b, 0);
    f.append(row("injected", total ? Object.entries(injected).map(([k, v]) => `${k} ${v}`).join(", ") : "none"));
    f.append(row("observed", Object.entries(observed).map(([k, v]) => `${k} ${v}`).join(", ") || "—"));
  }
}

/** The device's panel, made when a message is the first to name it (a device the hello did not
 * list): it has no target then. */
function panelOf(name) {
  if (name == null) return panels.values().next().value;
  if (!panels.has(name)) {
    panels.set(name, new Panel(name, "—"));
    layout();
  }
  return panels.get(name);
}

/** One device: its statistics and the scenario side by side, as the page always had them;
 * several: the scenario under the panels. Names shown only for several. */
function layout() {
  for (const panel of panels.values()) panel.find(".device-name").hidden = !several();
  const only = several() ? null : panels.values().next().value;
  if (only) only.find(".device-grid").insertBefore($("#scenario"), only.find(".health-card"));
  else $("#run-grid").prepend($("#scenario"));
}

/** The panels for the hello's devices: kept on a reconnect to the same run (the hello refills
 * them), made anew when it lists other devices (a new run). */
function panelsFor(devices) {
  const names = devices.map((d) => d.name);
  if (names.length === panels.size && names.every((name) => panels.has(name))) return;
  $("#run-grid").prepend($("#scenario"));
  for (const panel of panels.values()) {
    charts.remove(panel.chart);
    panel.node.remove();
  }
  panels.clear();
  progress.clear();
  for (const device of devices) panels.set(device.name, new Panel(device.name, device.target ?? "—"));
  layout();
}

function onHello(data) {
  const run = data.run;
  $("#run-name").textContent = run.scenario;
  $("#run-info").textContent =
    `${run.target} · seed ${run.seed} · started ${clock(run.started)}` +
    (run.run_id ? ` · run ${run.run_id}` : "");
  $("#run-link").hidden = !run.run_id;
  if (run.run_id) $("#run-link").href = `/runs/${run.run_id}`;
  timeline.plan(data.profile, data.steps, run.duration);
  const volts = data.profile.map((p) => `${p[1]} V at ${p[0]} s`).join(" → ");
  $("#profile-text").textContent = `supply: ${volts}`;
  panelsFor(data.devices);
  for (const device of data.devices) panels.get(device.name).load(device);
  $("#feed").replaceChildren();
  hellos.clear();
  for (const event of data.events) onEvent(event);
}

function onProgress(p, name) {
  progress.set(name, p);
  unshown = p;
  if (p.state === "ended") showProgress(p); // the verdict at once, also in a hidden page
}

/** The scenario card: the run's time, each device's step, every device's expectations. */
function showProgress(p) {
  timeline.at(p.t);
  const lines = [...panels.keys()].filter((name) => progress.has(name)).map((name) => {
    const q = progress.get(name);
    const step = q.step ? `step ${q.step.number} ${q.step.name}` : "no step yet";
    const next = q.next ? ` · next: ${q.next.name} at ${q.next.at} s` : "";
    return `${several() ? `${name}: ` : ""}${step}${next}`;
  });
  const time = p.duration == null ? `${duration(p.t)} running` : `${fmt(p.t, 1)} / ${p.duration} s`;
  const text = $("#progress-text");
  if (several()) text.replaceChildren(time, ...lines.map((line) => el("span", { class: "device-line", text: line })));
  else text.textContent = `${time} · ${lines[0] ?? ""}`;
  const list = $("#expectations");
  const items = [];
  for (const name of panels.keys()) {
    for (const e of progress.get(name)?.expectations ?? []) {
      const measured = e.detail || (e.measured == null ? "" : String(e.measured));
      items.push(
        el(
          "li",
          { class: `expect ${e.state}`, "data-state": e.state, "data-device": name },
          el("span", { class: `badge ${e.state}`, text: e.state }),
          el("span", { class: "label", text: several() ? `${name}: ${e.label}` : e.label }),
          e.limit ? el("span", { class: "limit", text: `limit ${e.limit}` }) : null,
          measured ? el("span", { class: "measured", text: measured }) : null,
        ),
      );
    }
  }
  list.replaceChildren(...items);
  if (!items.length) list.append(el("li", { class: "muted", text: "no expectations" }));
  if (p.state === "ended") {
    badge($("#verdict"), p.verdict || "ended", p.verdict || "ended");
    $("#verdict").hidden = false;
  }
}

function onEvent(e) {
  if (!hellos.has(e.device)) hellos.set(e.device, new HelloFilter());
  if (hellos.get(e.device).repeats(e)) return;
  const feed = $("#feed");
  const kind = e.kind === "expectation" ? e.data.state : e.kind;
  const who = several() && e.device ? el("span", { class: "device-tag", text: e.device }) : null;
  feed.prepend(
    el(
      "li",
      { class: `event ${e.kind}`, "data-device": e.device },
      el("time", { text: clock(e.t) }),
      who,
      el("span", { class: `badge ${kind}`, text: e.kind }),
      el("span", { class: "what", text: eventText(e) }),
    ),
  );
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

/** Each device's part of a `stats`, `progress` or `readback` message, by device name. */
function byDevice(message, take) {
  for (const [name, data] of Object.entries(message.devices ?? {})) take(panelOf(name), data, name);
}

connect({
  hello: onHello,
  measurements: (_, message) => {
    for (const item of message.items) panelOf(item.device)?.measurement(item.data, item);
  },
  stats: (_, message) => byDevice(message, (panel, data) => panel.stats(data, message)),
  progress: (_, message) => byDevice(message, (_panel, data, name) => onProgress(data, name)),
  events: (_, message) => {
    for (const event of message.items) onEvent(event);
  },
  readback: (_, message) => byDevice(message, (panel, data) => panel.readback(data)),
  closed: () => charts.freeze(),
});
ready();
