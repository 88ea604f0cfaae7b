// The two charts, both as stacked V / A / W panes (panes.js): the live minute (each line, V's
// min..max band, outlier markers; a chart per device, all on one time axis: LiveCharts) and the
// envelope chart of history and runs (per bucket the min..max band around the average of each
// measure, drag to zoom).
import { clock, DIGITS, fmt, isoDate } from "./common.js";
import { COLORS, MEASURES, SCALES, StackedPanes } from "./panes.js";

const BAND = { v: "rgba(37,99,235,0.18)", a: "rgba(220,38,38,0.14)", w: "rgba(22,163,74,0.14)" };
/** The bench supply's readback: a second trace on the V and A panes, dashed, in one colour. */
export const SUPPLY_COLOR = "#d97706";
const FRAME_MS = 66;

function line(label, m, width = 2) {
  return { label, scale: SCALES[m], stroke: COLORS[m], width, points: { show: false } };
}

function supply(label, m) {
  // Readback rows and sample rows share the columns (uPlot needs one x per pane): each leaves
  // the other's values undefined, which uPlot draws across; a null (gap()) breaks both lines.
  return { label, scale: SCALES[m], stroke: SUPPLY_COLOR, width: 1.5, dash: [6, 3], points: { show: false } };
}

function edge(label, m, stroke) {
  return { label, scale: SCALES[m], stroke, width: 0.5, points: { show: false } };
}

/** The cursor line's time: the clock, with the date when the span shown crosses days. */
function cursorTime(u, t) {
  const { min, max } = u.scales.x;
  return isoDate(min) === isoDate(max) ? clock(t) : `${isoDate(t)} ${clock(t)}`;
}

/**
 * The live charts of a run, one per device, on one time axis: one loop redraws them at about 15
 * frames a second whatever the sample rate (so the window scrolls smoothly; none while the page
 * is hidden: requestAnimationFrame pauses), every chart over the same `seconds` ending at the
 * newest sample of any device (moving on with the clock between samples). A chart scrolled out
 * of view is trimmed but not drawn. `onFrame()` runs first in each frame (the page's numbers).
 */
export class LiveCharts {
  constructor(seconds = 60, onFrame = null) {
    this.seconds = seconds;
    this.charts = [];
    this.onFrame = onFrame;
    this.frozen = false;
    this.visible = new IntersectionObserver((entries) => {
      for (const entry of entries) entry.target.liveChart.visible = entry.isIntersecting;
    });
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

  /** A chart for one device, drawn into `container`. */
  add(container) {
    const chart = new LiveChart(container, this.seconds);
    container.liveChart = chart;
    this.visible.observe(container);
    this.charts.push(chart);
    return chart;
  }

  /** Stop drawing `chart` (its panel is gone). */
  remove(chart) {
    this.visible.unobserve(chart.container);
    this.charts = this.charts.filter((c) => c !== chart);
  }

  /** The shared window's right edge: the newest sample's time of any chart. */
  now() {
    let end = null;
    for (const chart of this.charts) {
      const t = chart.now();
      if (t != null && (end == null || t > end)) end = t;
    }
    return end ?? Date.now() / 1000;
  }

  frame() {
    this.onFrame?.();
    if (this.frozen) return;
    const end = this.now();
    for (const chart of this.charts) chart.frame(end - this.seconds, end);
  }

  /** Stop scrolling (the run ended): the last minute stays as it was. */
  freeze() {
    this.frame();
    this.frozen = true;
  }
}

/**
 * One device's live chart: a window of `seconds` whose range the group (LiveCharts) sets.
 * Memory stays flat: samples older than the window are cut off the front of the columns, which
 * the three panes share. With a bench supply, its readbacks are rows of the same columns (in
 * time order, `sv` and `sa` set, the sample columns undefined), drawn as a second trace on V
 * and A.
 */
export class LiveChart {
  constructor(container, seconds = 60) {
    this.container = container;
    this.seconds = seconds;
    this.columns = { t: [], vmin: [], vmax: [], v: [], a: [], w: [], sv: [], sa: [] };
    this.readbacks = 0;
    this.outliers = []; // [t, measure, value]
    this.lastT = null;
    this.lastAt = 0;
    this.draws = 0;
    this.dirty = true;
    this.visible = true;
    const spec = {
      v: {
        series: [
          edge("V min", "v", "rgba(37,99,235,0.35)"), edge("V max", "v", "rgba(37,99,235,0.35)"), line("V", "v"),
          supply("supply V", "v"),
        ],
        bands: [{ series: [2, 1], fill: BAND.v }],
      },
      a: { series: [line("A", "a"), supply("supply A", "a")] },
      w: { series: [line("W", "w")] },
    };
    this.panes = new StackedPanes(container, spec, {
      onDraw: (u, m) => this.drawn(u, m),
      readout: (i) => this.readout(i),
    });
  }

  readout(i) {
    const c = this.columns;
    if (c.v[i] == null && c.sv[i] != null) {
      return [cursorTime(this.panes.plots.v, c.t[i]), ["supply", `${fmt(c.sv[i], DIGITS.v)} V ${fmt(c.sa[i], DIGITS.a)} A`]];
    }
    if (c.v[i] == null) return null;
    return [
      cursorTime(this.panes.plots.v, c.t[i]),
      ...MEASURES.map((m) => [m, `${fmt(c[m][i], DIGITS[m])} ${SCALES[m]}`]),
    ];
  }

  /** After pane m draws: its outlier markers; the V pane (drawn once a frame) counts frames. */
  drawn(u, m) {
    if (m === "v") {
      this.draws += 1;
      this.container.dataset.draws = String(this.draws);
      this.container.dataset.points = String(this.columns.t.length);
      this.container.dataset.readbacks = String(this.readbacks);
    }
    const ctx = u.ctx;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.strokeStyle = COLORS[m];
    for (const [t, measure, value] of this.outliers) {
      if (measure !== m || t < min || t > max) continue;
      const x = u.valToPos(t, "x", true);
      const y = u.valToPos(value, SCALES[m], true);
      ctx.beginPath();
      ctx.arc(x, y, 5 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
  }

  /** The last minute from the hello message (column-wise). */
  load(backlog, outliers, supply) {
    const b = backlog;
    const none = () => new Array(b.t.length).fill(undefined);
    this.columns = {
      t: b.t.slice(), vmin: b.vmin.slice(), vmax: b.vmax.slice(), v: b.v.slice(), a: b.a.slice(), w: b.w.slice(),
      sv: none(), sa: none(),
    };
    this.readbacks = 0;
    if (supply) supply.t.forEach((t, i) => this.pushReadback({ t, v: supply.v[i], a: supply.a[i] }));
    this.outliers = outliers.slice();
    if (b.t.length) this.mark(b.t[b.t.length - 1]);
    this.dirty = true;
  }

  mark(t) {
    this.lastT = t;
    this.lastAt = performance.now();
  }

  /** A row at its place in time (a sample comes after the readbacks its span covers). */
  insert(t, values) {
    const c = this.columns;
    let i = c.t.length;
    while (i > 0 && c.t[i - 1] > t) i--;
    for (const [name, column] of Object.entries(c)) column.splice(i, 0, name === "t" ? t : values[name]);
  }

  push(s) {
    // Trimmed here too, not only when drawn: a hidden page draws no frames but still gets samples.
    this.trim(s.t - this.seconds - 1);
    this.insert(s.t, { vmin: s.vmin, vmax: s.vmax, v: s.v, a: s.a, w: s.w });
    for (const m of s.outlier || []) this.outliers.push([s.t, m, s[m]]);
    this.mark(s.t);
    this.dirty = true;
  }

  /** The bench supply's readback {t, v, a}. */
  pushReadback(r) {
    this.insert(r.t, { sv: r.v, sa: r.a });
    this.readbacks += 1;
    this.dirty = true;
  }

  /** A gap in the lines (a reset, missed samples). */
  gap(t) {
    this.insert(t, Object.fromEntries(Object.keys(this.columns).map((name) => [name, null])));
  }

  trim(start) {
    const columns = Object.values(this.columns);
    const t = this.columns.t;
    let cut = 0;
    while (cut < t.length && t[cut] < start) cut++;
    if (cut > 0 && (cut >= 32 || cut * 4 >= t.length)) {
      for (const column of columns) column.splice(0, cut);
    }
    let keep = 0;
    while (keep < this.outliers.length && this.outliers[keep][0] < start) keep++;
    if (keep) this.outliers.splice(0, keep);
  }

  /** The newest sample's time, moving on with the clock since it came (null: none yet). */
  now() {
    if (this.lastT == null) return null;
    return this.lastT + (performance.now() - this.lastAt) / 1000;
  }

  /** Show [start, end] (the group's window): trimmed always, drawn while in view. */
  frame(start, end) {
    this.trim(start - 1);
    if (!this.visible) return;
    const c = this.columns;
    this.panes.batch(() => {
      if (this.dirty) this.panes.setData({ v: [c.t, c.vmin, c.vmax, c.v, c.sv], a: [c.t, c.a, c.sa], w: [c.t, c.w] });
      this.panes.setX(start, end);
    });
    this.dirty = false;
  }
}

/**
 * History and run charts: per bucket, the min..max band and the average of V, A and W, each in
 * its pane. Dragging across any pane calls onZoom(from, to) (the page fetches finer buckets
 * for that span).
 */
export class EnvelopeChart {
  constructor(container, onZoom) {
    this.container = container;
    this.history = null;
    const pane = (m) => ({
      series: [
        edge(`${SCALES[m]} min`, m, COLORS[m] + "66"),
        edge(`${SCALES[m]} max`, m, COLORS[m] + "66"),
        line(`${SCALES[m]} avg`, m, 1.5),
      ],
      bands: [{ series: [2, 1], fill: BAND[m] }],
    });
    this.panes = new StackedPanes(container, { v: pane("v"), a: pane("a"), w: pane("w") }, {
      onZoom,
      onDraw: (u, m) => {
        if (m === "v") container.dataset.draws = String((+container.dataset.draws || 0) + 1);
      },
      readout: (i) => this.readout(i),
    });
  }

  readout(i) {
    const h = this.history;
    if (!h || h.v_avg[i] == null) return null;
    return [
      cursorTime(this.panes.plots.v, h.t[i]),
      ...MEASURES.map((m) => {
        const [low, avg, high] = ["min", "avg", "max"].map((k) => fmt(h[`${m}_${k}`][i], DIGITS[m]));
        return [m, `${avg} ${SCALES[m]} (${low}–${high})`];
      }),
    ];
  }

  /** A /api/history answer, shown over [from, to]. */
  show(history) {
    this.history = history;
    const columns = (m) => [history.t, history[`${m}_min`], history[`${m}_max`], history[`${m}_avg`]];
    this.panes.batch(() => {
      this.panes.setData({ v: columns("v"), a: columns("a"), w: columns("w") });
      this.panes.setX(history.from, history.to);
    });
    this.container.dataset.points = String(history.t.length);
  }
}
