// The two charts, both as stacked V / A / W panes (panes.js): the live minute (each line, V's
// min..max band, outlier markers) and the envelope chart of history and runs (per bucket the
// min..max band around the average of each measure, drag to zoom).
import { clock, DIGITS, fmt, isoDate } from "./common.js";
import { COLORS, MEASURES, SCALES, StackedPanes } from "./panes.js";

const BAND = { v: "rgba(37,99,235,0.18)", a: "rgba(220,38,38,0.14)", w: "rgba(22,163,74,0.14)" };
const FRAME_MS = 66;

function line(label, m, width = 2) {
  return { label, scale: SCALES[m], stroke: COLORS[m], width, points: { show: false } };
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
 * The live chart: a fixed window of `seconds` that scrolls with the newest sample. Memory stays
 * flat: samples older than the window are cut off the front of the columns, which the three
 * panes share.
 */
export class LiveChart {
  constructor(container, seconds = 60) {
    this.container = container;
    this.seconds = seconds;
    this.columns = { t: [], vmin: [], vmax: [], v: [], a: [], w: [] };
    this.outliers = []; // [t, measure, value]
    this.lastT = null;
    this.lastAt = 0;
    this.draws = 0;
    this.dirty = true;
    const spec = {
      v: {
        series: [edge("V min", "v", "rgba(37,99,235,0.35)"), edge("V max", "v", "rgba(37,99,235,0.35)"), line("V", "v")],
        bands: [{ series: [2, 1], fill: BAND.v }],
      },
      a: { series: [line("A", "a")] },
      w: { series: [line("W", "w")] },
    };
    this.panes = new StackedPanes(container, spec, {
      onDraw: (u, m) => this.drawn(u, m),
      readout: (i) => this.readout(i),
    });
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

  readout(i) {
    const c = this.columns;
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
  load(backlog, outliers) {
    const b = backlog;
    this.columns = { t: b.t.slice(), vmin: b.vmin.slice(), vmax: b.vmax.slice(), v: b.v.slice(), a: b.a.slice(), w: b.w.slice() };
    this.outliers = outliers.slice();
    if (b.t.length) this.mark(b.t[b.t.length - 1]);
    this.dirty = true;
  }

  mark(t) {
    this.lastT = t;
    this.lastAt = performance.now();
  }

  push(s) {
    const c = this.columns;
    c.t.push(s.t);
    c.vmin.push(s.vmin);
    c.vmax.push(s.vmax);
    c.v.push(s.v);
    c.a.push(s.a);
    c.w.push(s.w);
    for (const m of s.outlier || []) this.outliers.push([s.t, m, s[m]]);
    this.mark(s.t);
    this.dirty = true;
  }

  /** A gap in the lines (a reset, missed samples). */
  gap(t) {
    for (const [name, column] of Object.entries(this.columns)) column.push(name === "t" ? t : null);
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
    const c = this.columns;
    this.panes.batch(() => {
      if (this.dirty) this.panes.setData({ v: [c.t, c.vmin, c.vmax, c.v], a: [c.t, c.a], w: [c.t, c.w] });
      this.panes.setX(start, end);
    });
    this.dirty = false;
  }

  /** Stop scrolling (the run ended): the last minute stays as it was. */
  freeze() {
    this.frame();
    this.frozen = true;
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
