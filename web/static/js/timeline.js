// The scenario's timeline: the supply profile (volts) over the run, a tick per step, and a
// cursor at the run's time. Plain SVG stretched to its box (so no text inside: the caption
// under it says the volts).
const NS = "http://www.w3.org/2000/svg";
const W = 1000;
const H = 100;
const PAD = 14;

function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

export class Timeline {
  constructor(container) {
    this.container = container;
    this.duration = null;
  }

  plan(profile, steps, duration) {
    this.duration = duration;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    root.append(svg("title", {}));
    root.firstChild.textContent = "supply profile (volts) and steps";
    this.container.replaceChildren(root);
    if (duration == null) {
      this.container.hidden = true;
      return;
    }
    this.container.hidden = false;
    const top = Math.max(...profile.map((p) => p[1]), 1) * 1.15;
    const x = (t) => (Math.min(t, duration) / duration) * W;
    const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
    const points = profile.map(([at, volts]) => [x(at), y(volts)]);
    const last = profile[profile.length - 1];
    points.push([W, y(last[1])]);
    if (profile[0][0] > 0) points.unshift([0, y(profile[0][1])]);
    root.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), class: "profile" }));
    for (const step of steps) {
      const sx = x(step.at);
      const tick = svg("line", { x1: sx, x2: sx, y1: 0, y2: H, class: "step" });
      const title = svg("title", {});
      title.textContent = `step ${step.number} at ${step.at} s: ${step.name}`;
      tick.append(title);
      root.append(tick);
    }
    this.cursor = svg("line", { x1: 0, x2: 0, y1: 0, y2: H, class: "cursor" });
    root.append(this.cursor);
  }

  at(t) {
    if (!this.cursor || this.duration == null) return;
    const cx = (Math.min(t, this.duration) / this.duration) * W;
    this.cursor.setAttribute("x1", cx);
    this.cursor.setAttribute("x2", cx);
  }
}
