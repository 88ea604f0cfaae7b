// The two chart shapes: the live minute (V with its min..max band on the left axis, A and W on
// the right, outlier markers) and the envelope chart of history and runs (min/max bands around
// the average of each measure, drag to zoom).
import uPlot from "/static/vendor/uPlot.esm.js";
import { chartHeight, fitWidth } from "./common.js";

export const COLORS = { v: "#2563eb", a: "#dc2626", w: "#16a34a" };
const BAND = { v: "rgba(37,99,235,0.18)", a: "rgba(220,38,38,0.14)", w: "rgba(22,163,74,0.14)" };
const MEASURE_SCALE = { v: "V", a: "A", w: "W" };
const FRAME_MS = 66;

function axes() {
  const side = (scale, color, digits, side, grid) => ({
    scale,
    side,
    stroke: color,
    grid: { show: grid, stroke: "rgba(128,128,128,0.15)" },
    ticks: { stroke: "rgba(128,128,128,0.3)" },
    size: window.innerWidth < 600 ? 44 : 54,
    values: (u, values, axis, space, increment) => {
      const places = Math.min(6, Math.max(digits, Math.ceil(-Math.log10(increment || 1))));
      return values.map((v) => v.toFixed(places));
    },
    label: scale,
    labelSize: window.innerWidth < 600 ? 12 : 16,
  });
  return [
    { stroke: "#888", grid: { stroke: "rgba(128,128,128,0.15)" } },
    side("V", COLORS.v, 1, 3, true),
    side("A", COLORS.a, 2, 1, false),
    side("W", COLORS.w, 1, 1, false),
  ];
}

function line(label, scale, color, width = 2) {
  return { label, scale, stroke: color, width, points: { show: false } };
}

function edge(label, scale, color) {
  return { label, scale, stroke: color, width: 0.5, points: { show: false } };
}

/**
 * The live chart: a fixed window of `seconds` that scrolls with the newest sample. Memory stays
 * flat: samples older than the window are cut off the front of the arrays.
 */
export class LiveChart {
  constructor(container, seconds = 60) {
    this.container = container;
    this.seconds = seconds;
    this.data = [[], [], [], [], [], []]; // t, vmin, vmax, v, a, w
    this.outliers = []; // [t, measure, value]
    this.lastT = null;
    this.lastAt = 0;
    this.draws = 0;
    this.dirty = true;
    const opts = {
      width: Math.max(240, container.clientWidth),
      height: chartHeight(),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, V: { auto: true }, A: { auto: true }, W: { auto: true } },
      series: [
        {},
        edge("V min", "V", "rgba(37,99,235,0.35)"),
        edge("V max", "V", "rgba(37,99,235,0.35)"),
        line("V", "V", COLORS.v),
        line("A", "A", COLORS.a),
        line("W", "W", COLORS.w),
      ],
      bands: [{ series: [2, 1], fill: BAND.v }],
      axes: axes(),
      hooks: { draw: [(u) => this.drawOutliers(u)] },
    };
    this.plot = new uPlot(opts, this.data, container);
    fitWidth(this.plot, container, chartHeight);
    // Redraw at about 15 frames a second whatever the sample rate, so the window scrolls
    // smoothly; none while the page is hidden (requestAnimationFrame pauses).
    let last = 0;
    const loop = (now) => {
      if (now - last >= FRAME_MS) {
        last = now;
        this.frame();
      }
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  drawOutliers(u) {
    this.draws += 1;
    this.container.dataset.draws = String(this.draws);
    this.container.dataset.points = String(this.data[0].length);
    const ctx = u.ctx;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const [t, measure, value] of this.outliers) {
      if (t < min || t > max) continue;
      const x = u.valToPos(t, "x", true);
      const y = u.valToPos(value, MEASURE_SCALE[measure], true);
      ctx.strokeStyle = COLORS[measure];
      ctx.beginPath();
      ctx.arc(x, y, 5 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
  }

  /** The last minute from the hello message (column-wise). */
  load(backlog, outliers) {
    const b = backlog;
    this.data = [b.t.slice(), b.vmin.slice(), b.vmax.slice(), b.v.slice(), b.a.slice(), b.w.slice()];
    this.outliers = outliers.slice();
    if (b.t.length) this.mark(b.t[b.t.length - 1]);
    this.dirty = true;
  }

  mark(t) {
    this.lastT = t;
    this.lastAt = performance.now();
  }

  push(s) {
    const d = this.data;
    d[0].push(s.t);
    d[1].push(s.vmin);
    d[2].push(s.vmax);
    d[3].push(s.v);
    d[4].push(s.a);
    d[5].push(s.w);
    for (const m of s.outlier || []) this.outliers.push([s.t, m, s[m]]);
    this.mark(s.t);
    this.dirty = true;
  }

  /** A gap in the line (a reset, missed samples). */
  gap(t) {
    const d = this.data;
    d[0].push(t);
    for (let i = 1; i < d.length; i++) d[i].push(null);
  }

  trim(start) {
    const d = this.data;
    let cut = 0;
    while (cut < d[0].length && d[0][cut] < start) cut++;
    if (cut > 0 && (cut >= 32 || cut * 4 >= d[0].length)) {
      for (const column of d) column.splice(0, cut);
    }
    let keep = 0;
    while (keep < this.outliers.length && this.outliers[keep][0] < start) keep++;
    if (keep) this.outliers.splice(0, keep);
  }

  /** The window's right edge: the newest sample's time, moving on with the clock between. */
  now() {
    if (this.lastT == null) return Date.now() / 1000;
    return this.lastT + (performance.now() - this.lastAt) / 1000;
  }

  frame() {
    if (this.frozen) return;
    const end = this.now();
    const start = end - this.seconds;
    this.trim(start - 1);
    this.plot.batch(() => {
      if (this.dirty) this.plot.setData(this.data, false);
      this.plot.setScale("x", { min: start, max: end });
    });
    this.dirty = false;
  }

  /** Stop scrolling (the run ended): the last minute stays as it was. */
  freeze() {
    this.frame();
    this.frozen = true;
  }
}

const ENVELOPE = ["t", "v_min", "v_max", "v_avg", "a_min", "a_max", "a_avg", "w_min", "w_max", "w_avg"];

/**
 * History and run charts: per bucket, the min..max band and the average of V, A and W. Dragging
 * across it calls onZoom(from, to) (the page fetches finer buckets for that span).
 */
export class EnvelopeChart {
  constructor(container, onZoom) {
    this.container = container;
    const measure = (m, name) => [
      edge(`${name} min`, MEASURE_SCALE[m], COLORS[m] + "66"),
      edge(`${name} max`, MEASURE_SCALE[m], COLORS[m] + "66"),
      line(`${name} avg`, MEASURE_SCALE[m], COLORS[m], 1.5),
    ];
    const opts = {
      width: Math.max(240, container.clientWidth),
      height: chartHeight(),
      cursor: { drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: true }, V: { auto: true }, A: { auto: true }, W: { auto: true } },
      series: [{}, ...measure("v", "V"), ...measure("a", "A"), ...measure("w", "W")],
      bands: [
        { series: [2, 1], fill: BAND.v },
        { series: [5, 4], fill: BAND.a },
        { series: [8, 7], fill: BAND.w },
      ],
      axes: axes(),
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 4) return;
            const from = u.posToVal(u.select.left, "x");
            const to = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom(from, to);
          },
        ],
        draw: [() => (container.dataset.draws = String((+container.dataset.draws || 0) + 1))],
      },
    };
    this.plot = new uPlot(opts, ENVELOPE.map(() => []), container);
    fitWidth(this.plot, container, chartHeight);
  }

  /** A /api/history answer, shown over [from, to]. */
  show(history) {
    const data = ENVELOPE.map((name) => history[name]);
    this.plot.setData(data, false);
    this.plot.setScale("x", { min: history.from, max: history.to });
    this.container.dataset.points = String(history.t.length);
  }
}
