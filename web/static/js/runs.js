// The runs page: every logged run with its verdict, newest first.
import { $, badge, dateTime, duration, el, getJSON, ready } from "./common.js";

const PAGE = 50;
let offset = 0;

async function more() {
  try {
    const { runs } = await getJSON(`/api/runs?limit=${PAGE}&offset=${offset}`);
    offset += runs.length;
    const body = $("#runs tbody");
    for (const r of runs) {
      const verdict = el("span");
      badge(verdict, r.verdict || "running", r.verdict || "running");
      const length = r.ended == null ? "—" : duration(r.ended - r.started);
      body.append(
        el(
          "tr",
          { "data-run": r.id },
          el("td", {}, el("a", { href: `/runs/${r.id}`, text: `#${r.id}` })),
          el("td", {}, el("a", { href: `/runs/${r.id}`, text: r.scenario ?? r.kind })),
          el("td", {}, verdict),
          el("td", { text: dateTime(r.started) }),
          el("td", { text: length }),
          el("td", { text: r.target }),
          el("td", { text: r.seed ?? "—" }),
          el("td", { text: r.firmware ?? "—" }),
          el("td", {}, el("a", { href: `/api/export.csv?run=${r.id}`, download: true, text: "CSV" })),
        ),
      );
    }
    $("#more").hidden = runs.length < PAGE;
    $("#info").textContent = offset ? `${offset} run${offset === 1 ? "" : "s"} shown` : "no runs logged yet";
  } catch (error) {
    $("#info").textContent = `cannot load the runs: ${error.message}`;
  }
}

$("#more").addEventListener("click", more);
more();
ready();
