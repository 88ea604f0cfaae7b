// One run's page: its verdict and record, its samples as an envelope chart, its events. A run of
// several devices offers a device selector (every device, or one): the chart, the events, the
// CSV link and the record's expectations and link totals follow it.
import { EnvelopeChart } from "./charts.js";
import {
  $, badge, clock, dateTime, deviceChoice, deviceQuery, duration, el, fmt, getJSON, ready,
} from "./common.js";
import { eventText, HelloFilter } from "./event-text.js";

const id = Number(document.body.dataset.run);
const KINDS = ["alert", "reset", "power", "command", "step", "expectation", "fault", "corrupt", "gap",
  "retransmission", "duplicate", "log", "hello", "run", "store"];
const PAGE = 500;
const stack = [];
let span = null;
let current = null;
let lastEvent = 0;
let started = 0;
/** Device name -> the repeat filter of its hellos (each device says hello on its own). */
const hellos = new Map();
/** The device shown ("" for every device), and whether the run has several. */
let device = new URLSearchParams(location.search).get("device") || "";
let several = false;
let theRun = null;

const chart = new EnvelopeChart($("#chart"), (from, to) => show(from, to, true));

async function show(from, to, push = false) {
  if (push && current) stack.push(current);
  $("#back").disabled = stack.length === 0;
  current = [from, to];
  const points = Math.min(2000, Math.max(200, Math.round($("#chart").clientWidth)));
  try {
    const h = await getJSON(`/api/history?from=${from}&to=${to}&points=${points}&run=${id}${deviceQuery(device)}`);
    chart.show(h);
    $("#info").textContent = `${h.t.length} buckets of ${duration(h.width)} · ${duration(to - from)} shown`;
  } catch (error) {
    $("#info").textContent = `cannot load the samples: ${error.message}`;
  }
}

/** The record's part for the device shown: its section, or the whole run's. */
function recordOf(run) {
  const record = run.record || {};
  return (device && (record.devices || []).find((d) => d.name === device)) || record;
}

function showRecord(run) {
  const record = recordOf(run);
  $("#run-name").textContent = run.scenario ?? run.kind;
  badge($("#verdict"), run.verdict || "running", run.verdict || "running");
  const length = run.ended == null ? "still running" : duration(run.ended - run.started);
  const section = run.devices.find((d) => d.name === device);
  const firmware = section ? section.firmware : run.firmware;
  const count = section ? section.samples.count : run.samples.count;
  const devices = several ? ` · ${run.devices.length} devices` : "";
  $("#run-info").textContent =
    `${section ? section.target : run.target}${devices} · seed ${run.seed ?? "—"} · firmware ` +
    `${firmware ?? "—"} · started ${dateTime(run.started)} · ${length} · ${count} samples`;
  $("#csv").href = `/api/export.csv?run=${id}${deviceQuery(device)}`;
  $("#live").hidden = !(run.verdict == null && document.body.dataset.mode === "live");
  const list = $("#expectations");
  const expectations = record.expectations || [];
  list.replaceChildren(
    ...expectations.map((e) =>
      el(
        "li",
        { class: `expect ${e.state}`, "data-state": e.state },
        el("span", { class: `badge ${e.state}`, text: e.state }),
        el("span", { class: "label", text: e.label }),
        e.limit ? el("span", { class: "limit", text: `limit ${e.limit}` }) : null,
        el("span", { class: "measured", text: e.detail || (e.measured == null ? "" : String(e.measured)) }),
      ),
    ),
  );
  if (!expectations.length) list.append(el("li", { class: "muted", text: run.record ? "no expectations" : "no record yet" }));
  const link = $("#link tbody");
  link.replaceChildren();
  for (const [key, value] of Object.entries(record.link || {})) {
    link.append(el("tr", {}, el("th", { text: key.replaceAll("_", " ") }), el("td", { text: value })));
  }
  const injected = Object.entries(record.injected || {}).filter(([, n]) => n);
  if (injected.length) {
    link.append(el("tr", {}, el("th", { text: "injected" }), el("td", { text: injected.map(([k, n]) => `${k} ${n}`).join(", ") })));
  }
}

/** Bumped by each reload of the events: a page of events that comes after a newer reload (or
 * after another page was appended) is not shown, so no row is listed twice. */
let eventsGeneration = 0;

async function events(reset = false) {
  if (reset) {
    eventsGeneration += 1;
    lastEvent = 0;
    hellos.clear();
    $("#events tbody").replaceChildren();
  }
  const generation = eventsGeneration;
  const after = lastEvent;
  const kind = $("#kind").value;
  const query = `limit=${PAGE}&after=${after}${kind ? `&kinds=${kind}` : ""}${deviceQuery(device)}`;
  const { events: found } = await getJSON(`/api/runs/${id}/events?${query}`);
  if (generation !== eventsGeneration || after !== lastEvent) return;
  const body = $("#events tbody");
  for (const e of found) {
    lastEvent = e.id;
    if (!hellos.has(e.device)) hellos.set(e.device, new HelloFilter());
    if (hellos.get(e.device).repeats(e)) continue;
    const tone = e.kind === "expectation" ? e.data.state : e.kind;
    const who = several && !device ? el("span", { class: "device-tag", text: `${e.device} ` }) : null;
    body.append(
      el("tr", { class: e.kind, "data-device": e.device },
        el("td", { class: "time", text: clock(e.t) }),
        el("td", { class: "at", text: `${fmt(e.t - started, 2)} s` }),
        el("td", { class: "kind" }, who, el("span", { class: `badge ${tone}`, text: e.kind })),
        el("td", { class: "details", text: eventText(e) }),
      ),
    );
  }
  $("#more-events").hidden = found.length < PAGE;
}

async function main() {
  for (const kind of KINDS) $("#kind").append(el("option", { value: kind, text: kind }));
  $("#kind").addEventListener("change", () => events(true));
  $("#more-events").addEventListener("click", () => events());
  $("#back").addEventListener("click", () => {
    const previous = stack.pop();
    if (previous) show(previous[0], previous[1]);
  });
  try {
    const run = await getJSON(`/api/runs/${id}`);
    theRun = run;
    started = run.started;
    several = run.devices.length > 1;
    deviceChoice(run.devices.map((d) => d.name), device, (name) => {
      device = name;
      showRecord(theRun);
      if (current) show(current[0], current[1]);
      events(true);
    });
    showRecord(run);
    const first = run.samples.first ?? run.started;
    const lastT = run.samples.last ?? run.ended ?? Date.now() / 1000;
    span = [Math.min(first, run.started), Math.max(lastT, first + 1)];
    await show(span[0], span[1] + 0.001);
    await events(true);
  } catch (error) {
    $("#run-name").textContent = "not found";
    $("#run-info").textContent = error.message;
  }
}

main();
ready();
