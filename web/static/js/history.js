// The history page: any span of the log (48 h of raw samples, older minutes from the rollups)
// as min/max envelopes; dragging zooms in and fetches finer buckets. A log of several devices
// offers a device selector (every device, or one): the chart and the CSV link follow it.
import { EnvelopeChart } from "./charts.js";
import {
  $, dateTime, deviceChoice, deviceQuery, duration, getJSON, parseDateTime, ready,
} from "./common.js";

const chart = new EnvelopeChart($("#chart"), (from, to) => show(from, to, true));
const stack = [];
let current = null;
const HOUR = 3600;
const params = new URLSearchParams(location.search);
/** The device shown ("" for every device). */
let device = params.get("device") || "";

function points() {
  return Math.min(2000, Math.max(200, Math.round($("#chart").clientWidth)));
}

async function show(from, to, push = false) {
  if (push && current) stack.push(current);
  $("#back").disabled = stack.length === 0;
  current = [from, to];
  $("#from").value = dateTime(from);
  $("#to").value = dateTime(to);
  $("#csv").href = `/api/export.csv?from=${from.toFixed(3)}&to=${to.toFixed(3)}${deviceQuery(device)}`;
  const query = `from=${from.toFixed(3)}&to=${to.toFixed(3)}&points=${points()}${deviceQuery(device)}`;
  try {
    const h = await getJSON(`/api/history?${query}`);
    chart.show(h);
    const source = { raw: "raw samples", rollup_10: "10 s rollups", rollup_60: "1 min rollups" }[h.source];
    $("#info").textContent =
      `${h.t.length} buckets of ${duration(h.width)} from ${source} · ${duration(to - from)} shown`;
  } catch (error) {
    $("#info").textContent = `cannot load the history: ${error.message}`;
  }
}

function last(span) {
  const now = Date.now() / 1000;
  stack.length = 0;
  $("#opened").textContent = `the last ${duration(span)}`;
  show(now - span, now);
}

/** Opens on the newest run's span (started..ended, or now while it runs) with a margin of a
 * tenth of its length each side (at least 2 s), so a 20 s run fills the chart; on the last
 * hour when nothing has run. */
async function openOnLastRun() {
  let run = null;
  try {
    run = (await getJSON("/api/runs?limit=1")).runs[0] ?? null;
  } catch (error) {
    $("#info").textContent = `cannot load the runs: ${error.message}`;
  }
  if (!run) {
    last(HOUR);
    return;
  }
  const end = run.ended ?? Date.now() / 1000;
  const margin = Math.max(2, (end - run.started) / 10);
  const name = run.scenario ?? run.kind;
  $("#opened").textContent =
    `the newest run, #${run.id} ${name} (started ${dateTime(run.started)}, ` +
    `${duration(end - run.started)}), with ${duration(margin)} either side`;
  show(run.started - margin, end + margin);
}

for (const button of document.querySelectorAll("[data-span]")) {
  button.addEventListener("click", () => last(Number(button.dataset.span)));
}
$("#span").addEventListener("submit", (event) => {
  event.preventDefault();
  const from = parseDateTime($("#from").value);
  const to = parseDateTime($("#to").value);
  if (from == null || to == null) $("#info").textContent = "write the times as 2026-11-22 14:03:07";
  else if (to <= from) $("#info").textContent = "choose a start before the end";
  else {
    $("#opened").textContent = "the span chosen";
    show(from, to, true);
  }
});
$("#back").addEventListener("click", () => {
  const previous = stack.pop();
  if (previous) show(previous[0], previous[1]);
});
$("#out").addEventListener("click", () => {
  const [from, to] = current;
  const span = to - from;
  show(from - span / 2, Math.min(to + span / 2, Date.now() / 1000 + 60), true);
});

async function chooseDevice() {
  try {
    const { devices } = await getJSON("/api/devices");
    deviceChoice(devices, device, (name) => {
      device = name;
      if (current) show(current[0], current[1]);
    });
  } catch (error) {
    $("#info").textContent = `cannot load the devices: ${error.message}`;
  }
}

chooseDevice();
if (params.has("from") && params.has("to")) {
  $("#opened").textContent = "the span in the address";
  show(Number(params.get("from")), Number(params.get("to")));
} else openOnLastRun();
ready();
