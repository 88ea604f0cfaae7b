// Three stacked panes on one time axis, as a power analyser draws them: V on top, then A, then
// W, each its own uPlot with its own y axis and unit label. They share the x scale (the owner
// sets it on all three), the cursor (uPlot's sync: pointing at one pane marks the same time in
// the others) and the width of their y axes (so the three plots line up), and only the bottom
// pane labels the time. A line above the panes reads V, A and W at the cursor.
import uPlot from "/static/vendor/uPlot.esm.js";
import { el } from "./common.js";
import { paneRange, paneTicks } from "./pane-scale.js";
import { TIME_TICK_SPACE, timeAxisSize, timeTicks } from "./time-axis.js";

export const MEASURES = ["v", "a", "w"];
export const COLORS = { v: "#2563eb", a: "#dc2626", w: "#16a34a" };
export const SCALES = { v: "V", a: "A", w: "W" };
const LABELS = { v: "voltage (V)", a: "current (A)", w: "power (W)" };
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = `bold ${FONT}`;
/** Width of the rotated unit label's band, in CSS pixels: the label's 12 px and a margin. */
const LABEL_SIZE = 18;
const GRID = { stroke: "rgba(128,128,128,0.15)", width: 1 };
const TICKS = { stroke: "rgba(128,128,128,0.3)", width: 1, size: 6 };
/** Room kept above and below each plot (CSS px) for half of an end tick's label. */
const EDGE = 8;
/** Room right of each plot (CSS px) for half of a time label ("HH:MM:SS.dd") on its edge. */
const RIGHT = 34;

/** Height of each pane's plot area: the same for all three. */
function plotHeight() {
  return window.innerWidth < 600 ? 110 : 150;
}

const measurer = document.createElement("canvas").getContext("2d");

/** Width an axis needs for its tick labels: the tick, the gap and the widest label. */
function labelsWidth(axis, values) {
  measurer.font = axis.font[0];
  let widest = 0;
  for (const v of values || []) if (v != null) widest = Math.max(widest, measurer.measureText(v).width);
  return Math.ceil(axis.ticks.size + axis.gap + widest / devicePixelRatio + 2);
}

let syncKeys = 0;

export class StackedPanes {
  /**
   * spec[m] = {series, bands}: the uPlot series (after x) and bands of measure m's pane.
   * options.onZoom(from, to) makes dragging across any pane select a span; options.onDraw(u, m)
   * runs after pane m draws; options.readout(idx) gives the cursor line's parts for sample idx
   * (or null for the hint).
   */
  constructor(container, spec, options = {}) {
    this.container = container;
    this.options = options;
    this.hint = options.hint || "point at the chart to read V, A and W at a time";
    this.readout = el("p", { class: "chart-readout muted", text: this.hint });
    container.replaceChildren(this.readout);
    this.yWidths = new Map(); // pane -> width its y labels need; all panes use the widest
    this.yWidth = 40;
    this.xAxisHeight = 0;
    const key = `powerhil-panes-${++syncKeys}`;
    this.plots = {};
    for (const m of MEASURES) {
      const bottom = m === MEASURES[MEASURES.length - 1];
      const node = el("div", { class: "pane", "data-measure": m });
      container.append(node);
      const empty = [[], ...spec[m].series.map(() => [])];
      this.plots[m] = new uPlot(this.paneOptions(m, spec[m], bottom, key), empty, node);
    }
    container.plots = this.plots; // for tests and the console: measure -> its uPlot
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  paneOptions(m, spec, bottom, key) {
    const onZoom = this.options.onZoom;
    return {
      width: this.width(),
      height: plotHeight() + 2 * EDGE,
      legend: { show: false },
      padding: [EDGE, RIGHT, bottom ? 0 : EDGE, 0],
      cursor: {
        y: false,
        // Only the pointer's position is shared: a drag selects in the pane it is made in.
        sync: { key, filters: { pub: (type) => type === "mousemove", sub: () => true } },
        drag: { x: Boolean(onZoom), y: false, setScale: false },
      },
      scales: { x: { time: true }, [SCALES[m]]: { auto: true, range: paneRange(m) } },
      series: [{}, ...spec.series],
      bands: spec.bands || [],
      axes: [this.timeAxis(bottom), this.valueAxis(m)],
      hooks: {
        draw: [(u) => this.options.onDraw?.(u, m)],
        setCursor: m === MEASURES[0] ? [(u) => this.showReadout(u.cursor.idx)] : [],
        setSelect: onZoom ? [(u) => this.selected(u)] : [],
      },
    };
  }

  timeAxis(bottom) {
    const axis = { scale: "x", space: TIME_TICK_SPACE, grid: GRID, font: FONT, stroke: "#888" };
    if (!bottom) return { ...axis, size: 0, ticks: { show: false }, values: (u, splits) => splits.map(() => null) };
    return {
      ...axis,
      ticks: TICKS,
      values: timeTicks,
      size: (u, values, i) => {
        const size = timeAxisSize(u, values, i);
        if (size !== this.xAxisHeight) {
          this.xAxisHeight = size;
          queueMicrotask(() => this.resize());
        }
        return size;
      },
    };
  }

  valueAxis(m) {
    return {
      scale: SCALES[m],
      side: 3,
      stroke: COLORS[m],
      font: FONT,
      label: LABELS[m],
      labelFont: LABEL_FONT,
      labelSize: LABEL_SIZE,
      labelGap: 0,
      grid: GRID,
      ticks: TICKS,
      values: paneTicks,
      size: (u, values, i) => this.yAxisWidth(u, values, i),
    };
  }

  /** Every pane's y axis is as wide as the widest labels of the three need. */
  yAxisWidth(u, values, i) {
    if (values) this.yWidths.set(u, labelsWidth(u.axes[i], values));
    const width = Math.max(40, ...this.yWidths.values());
    if (width !== this.yWidth) {
      this.yWidth = width;
      queueMicrotask(() => {
        for (const plot of Object.values(this.plots)) if (plot !== u) plot.redraw(false, true);
      });
    }
    return width;
  }

  width() {
    return Math.max(240, this.container.clientWidth);
  }

  resize() {
    const width = this.width();
    const height = plotHeight() + 2 * EDGE;
    for (const m of MEASURES) {
      const plot = this.plots[m];
      const h = m === MEASURES[MEASURES.length - 1] ? height - EDGE + this.xAxisHeight : height;
      if (plot.width !== width || plot.height !== h) plot.setSize({ width, height: h });
    }
  }

  /** data[m]: pane m's columns (x first), as its series are. */
  setData(data) {
    for (const m of MEASURES) this.plots[m].setData(data[m], false);
  }

  setX(min, max) {
    for (const m of MEASURES) this.plots[m].setScale("x", { min, max });
  }

  batch(fn) {
    this.plots.v.batch(() => this.plots.a.batch(() => this.plots.w.batch(fn)));
  }

  selected(u) {
    if (u.select.width < 4) return;
    const from = u.posToVal(u.select.left, "x");
    const to = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    this.options.onZoom(from, to);
  }

  showReadout(idx) {
    const parts = idx == null ? null : this.options.readout?.(idx);
    if (!parts) {
      this.readout.replaceChildren(this.hint);
      return;
    }
    const [time, ...values] = parts;
    this.readout.replaceChildren(
      el("span", { text: time }),
      ...values.map(([m, text]) => el("span", { class: `key-text ${m}`, text })),
    );
  }
}
