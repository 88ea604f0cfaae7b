// The live page: numbers, the last minute's chart, statistics, link health, scenario progress
// and the alerts feed, all from the /ws messages (hello, measurement, stats, progress, event).
import { LiveChart } from "./charts.js";
import { $, badge, clock, connect, DIGITS, duration, el, fmt, ready } from "./common.js";
import { eventText, HelloFilter } from "./event-text.js";
import { Timeline } from "./timeline.js";

const FEED_MAX = 60;
const chart = new LiveChart($("#chart"));
const timeline = new Timeline($("#timeline"));
const hellos = new HelloFilter();
let lastBoot = null;

function showNumbers(s) {
  for (const m of ["v", "a", "w"]) {
    const node = $(`#${m} .num`);
    node.textContent = fmt(s[m], DIGITS[m]);
    node.parentElement.classList.toggle("outlier", (s.outlier || []).includes(m));
  }
  badge($("#status"), s.status, s.status === "ok" ? "ok" : "alarm");
  $("#sample-info").textContent = `seq ${s.seq} · boot ${s.boot} · ${clock(s.t)} · ${s.n} readings`;
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
  chart.load(data.backlog, data.outliers);
  const n = data.backlog.t.length;
  if (n) {
    const i = n - 1;
    const b = data.backlog;
    showNumbers({
      v: b.v[i], a: b.a[i], w: b.w[i], status: b.status[i], t: b.t[i], seq: "—", boot: "—", n: "—",
    });
  }
  $("#feed").replaceChildren();
  hellos.reset();
  for (const event of data.events) onEvent(event);
}

function onMeasurement(s, message) {
  if (lastBoot != null && (s.boot !== lastBoot || message.missed)) chart.gap(s.t - s.dt / 1000);
  lastBoot = s.boot;
  chart.push(s);
  showNumbers(s);
}

function row(label, ...cells) {
  return el("tr", {}, el("th", { text: label }), ...cells.map((c) => el("td", { text: c })));
}

function onStats(data, message) {
  const win = data.window;
  const minute = $("#minute tbody");
  minute.replaceChildren();
  for (const m of ["v", "a", "w"]) {
    const s = win ? win[m] : {};
    minute.append(row(m.toUpperCase(), fmt(s.min, DIGITS[m]), fmt(s.avg, DIGITS[m]), fmt(s.max, DIGITS[m])));
  }
  $("#minute-samples").textContent = win ? `${win.samples} samples` : "no samples yet";
  const moving = $("#moving tbody");
  moving.replaceChildren();
  for (const m of ["v", "a", "w"]) {
    const cells = ["1m", "5m", "15m"].map((k) => fmt(data.moving[k]?.[m], DIGITS[m]));
    moving.append(row(m.toUpperCase(), ...cells));
  }
  const covered = ["1m", "5m", "15m"].map((k) => duration(data.moving[k]?.seconds)).join(" / ");
  $("#moving-covered").textContent = `data held: ${covered}`;
  $("#wh").textContent = fmt(data.energy.wh, 4);
  $("#mah").textContent = fmt(data.energy.mah, 2);
  $("#energy-span").textContent = `over ${duration(data.energy.seconds)} of samples · outliers: ${data.outliers}`;
  showLink(data.link);
  showHealth(data.health, data.faults, data.store, message.client);
}

function showLink(link) {
  badge($("#link-state"), link.state, link.state);
  $("#target").textContent = link.target;
  $("#fw").textContent = link.fw ?? "—";
  $("#boot").textContent = link.boot ?? "—";
  $("#interval").textContent = link.interval == null ? "—" : `${Math.round(link.interval * 1000)} ms`;
}

function showHealth(h, faults, store, client) {
  const body = $("#health tbody");
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
  if (store) body.append(row("stored rows", `${store.rows_written} (${store.pending} pending)`));
  if (client) body.append(row("this page missed", `${client.missed} samples`));
  const f = $("#faults tbody");
  f.replaceChildren();
  const injected = faults.injected || {};
  const observed = faults.observed || {};
  const total = Object.values(injected).reduce((a, b) => a + b, 0);
  f.append(row("injected", total ? Object.entries(injected).map(([k, v]) => `${k} ${v}`).join(", ") : "none"));
  f.append(row("observed", Object.entries(observed).map(([k, v]) => `${k} ${v}`).join(", ") || "—"));
}

function onProgress(p) {
  timeline.at(p.t);
  const step = p.step ? `step ${p.step.number} ${p.step.name}` : "no step yet";
  const next = p.next ? ` · next: ${p.next.name} at ${p.next.at} s` : "";
  $("#progress-text").textContent =
    (p.duration == null ? `${duration(p.t)} running` : `${fmt(p.t, 1)} / ${p.duration} s`) +
    ` · ${step}${next}`;
  const list = $("#expectations");
  list.replaceChildren(
    ...p.expectations.map((e) => {
      const measured = e.detail || (e.measured == null ? "" : String(e.measured));
      return el(
        "li",
        { class: `expect ${e.state}`, "data-state": e.state },
        el("span", { class: `badge ${e.state}`, text: e.state }),
        el("span", { class: "label", text: e.label }),
        measured ? el("span", { class: "measured", text: measured }) : null,
      );
    }),
  );
  if (!p.expectations.length) list.append(el("li", { class: "muted", text: "no expectations" }));
  if (p.state === "ended") {
    badge($("#verdict"), p.verdict || "ended", p.verdict || "ended");
    $("#verdict").hidden = false;
  }
}

function onEvent(e) {
  if (hellos.repeats(e)) return;
  const feed = $("#feed");
  const kind = e.kind === "expectation" ? e.data.state : e.kind;
  feed.prepend(
    el("li", { class: `event ${e.kind}` }, el("time", { text: clock(e.t) }), el("span", { class: `badge ${kind}`, text: e.kind }), el("span", { class: "what", text: eventText(e) })),
  );
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

connect({
  hello: onHello,
  measurement: onMeasurement,
  stats: onStats,
  progress: onProgress,
  event: onEvent,
  closed: () => chart.freeze(),
});
ready();
