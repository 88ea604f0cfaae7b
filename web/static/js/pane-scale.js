// The y axis of a measure's pane: its range and its tick labels. The range is the data's
// min..max with some headroom but never narrower than the measure's minimum span, so the
// noise of a steady rail (a few mV, a few mA) draws as a nearly flat line in the middle of its
// pane instead of filling it, and a real change (a brownout) still gets the whole pane.
export const MIN_SPAN = { v: 0.5, a: 0.05, w: 0.25 };
/** Headroom above and below the data, as a fraction of its span. */
const HEADROOM = 0.08;

const tidy = (x) => Number(x.toPrecision(12));

/** uPlot scale `range` for measure m: [min, max] with max - min >= MIN_SPAN[m] holding every
 * value in view; the ends fall on fifths of the minimum span (0.1 V, 10 mA, 0.05 W). */
export function paneRange(m) {
  const minSpan = MIN_SPAN[m];
  const step = minSpan / 5;
  return (u, dataMin, dataMax) => {
    if (!Number.isFinite(dataMin) || !Number.isFinite(dataMax)) return [0, minSpan];
    const span = dataMax - dataMin;
    const half = Math.max(minSpan, span * (1 + 2 * HEADROOM)) / 2;
    const mid = (dataMin + dataMax) / 2;
    const low = Math.min(dataMin, tidy(Math.floor((mid - half) / step) * step));
    const high = Math.max(dataMax, tidy(Math.ceil((mid + half) / step) * step));
    return [low, high];
  };
}

/** uPlot axis `values`: as many decimals as the tick spacing needs (0.1 V → 4.8, 0.005 A →
 * 0.245), at most 4. */
export function paneTicks(u, splits, axisIndex, space, increment) {
  const places = Math.min(4, Math.max(0, Math.ceil(-Math.log10(increment || 1) - 1e-9)));
  return splits.map((v) => v.toFixed(places));
}
