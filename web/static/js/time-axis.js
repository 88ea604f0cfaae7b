// The time axis under every chart, in the page's own 24-hour local time (common.js's clock):
// HH:MM:SS, HH:MM when ticks are a minute or more apart, HH:MM:SS.d(d) when they are under a
// second apart, and the date (YYYY-MM-DD) only where it is needed: under the first tick and
// the first tick of each new day when the span crosses midnight, or alone when ticks are a day
// or more apart.
import { clock, isoDate, pad2 } from "./common.js";

const DAY = 86400;

/** Ticks this many CSS pixels apart at least: room for "HH:MM:SS.dd" with a gap. */
export const TIME_TICK_SPACE = 84;

function subSecond(t, increment) {
  const places = Math.min(3, Math.ceil(-Math.log10(increment) - 1e-9));
  const scale = 10 ** places;
  const ticks = Math.round(t * scale);
  const whole = Math.floor(ticks / scale);
  return `${clock(whole)}.${String(ticks - whole * scale).padStart(places, "0")}`;
}

function timeOfDay(t, increment) {
  if (increment < 1) return subSecond(t, increment);
  if (increment >= 60) {
    const d = new Date(t * 1000);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  }
  return clock(t);
}

/** uPlot axis `values`: the labels of the ticks at `splits` (unix seconds). */
export function timeTicks(u, splits, axisIndex, space, increment) {
  if (increment >= DAY) return splits.map(isoDate);
  const { min, max } = u.scales.x;
  const crossesDays = min != null && max != null && isoDate(min) !== isoDate(max);
  let dayShown = null;
  return splits.map((t) => {
    const time = timeOfDay(t, increment);
    const day = isoDate(t);
    if (!crossesDays || day === dayShown) return time;
    dayShown = day;
    return `${time}\n${day}`;
  });
}

/** uPlot axis `size`: the tick, the gap and one line of labels, or two when a date shows. */
export function timeAxisSize(u, values, axisIndex) {
  const axis = u.axes[axisIndex];
  const lines = values && values.some((v) => v != null && v.includes("\n")) ? 2 : 1;
  const lineHeight = (axis.font[1] / devicePixelRatio) * axis.lineGap;
  return Math.ceil(axis.ticks.size + axis.gap + lines * lineHeight + 2);
}
