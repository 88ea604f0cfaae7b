// The history page: any span of the log (48 h of raw samples, older minutes from the rollups)
// as min/max envelopes; dragging zooms in and fetches finer buckets.
import { EnvelopeChart } from "./charts.js";
import { $, duration, getJSON, pad2, ready } from "./common.js";

const chart = new EnvelopeChart($("#chart"), (from, to) => show(from, to, true));
const stack = [];
let current = null;

function points() {
  return Math.min(2000, Math.max(200, Math.round($("#chart").clientWidth)));
}

function localInput(t) {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

async function show(from, to, push = false) {
  if (push && current) stack.push(current);
  $("#back").disabled = stack.length === 0;
  current = [from, to];
  $("#from").value = localInput(from);
  $("#to").value = localInput(to);
  $("#csv").href = `/api/export.csv?from=${from.toFixed(3)}&to=${to.toFixed(3)}`;
  const query = `from=${from.toFixed(3)}&to=${to.toFixed(3)}&points=${points()}`;
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
  show(now - span, now);
}

for (const button of document.querySelectorAll("[data-span]")) {
  button.addEventListener("click", () => last(Number(button.dataset.span)));
}
$("#span").addEventListener("submit", (event) => {
  event.preventDefault();
  const from = new Date($("#from").value).getTime() / 1000;
  const to = new Date($("#to").value).getTime() / 1000;
  if (Number.isFinite(from) && Number.isFinite(to) && to > from) show(from, to, true);
  else $("#info").textContent = "choose a start before the end";
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

const params = new URLSearchParams(location.search);
if (params.has("from") && params.has("to")) show(Number(params.get("from")), Number(params.get("to")));
else last(3600);
ready();
