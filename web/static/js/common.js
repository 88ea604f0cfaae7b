// Helpers shared by the pages: DOM, number and time formatting, fetching JSON, the WebSocket.

export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function fmt(x, digits = 3) {
  return x == null || !Number.isFinite(x) ? "—" : x.toFixed(digits);
}

export const DIGITS = { v: 3, a: 4, w: 3 };
export const UNITS = { v: "V", a: "A", w: "W" };

export function pad2(n) {
  return String(n).padStart(2, "0");
}

/** Local clock time of unix seconds: 14:03:07. */
export function clock(t) {
  if (t == null) return "—";
  const d = new Date(t * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Local date of unix seconds: 2026-11-22. */
export function isoDate(t) {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

/** Local date and time of unix seconds: 2026-11-22 14:03:07. */
export function dateTime(t) {
  if (t == null) return "—";
  return `${isoDate(t)} ${clock(t)}`;
}

const DATE_TIME = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$/;

/** Unix seconds of a local "2026-11-22 14:03:07" (seconds, or the whole time, may be left
 * out), as dateTime() writes it; null when the text is not such a date or time. */
export function parseDateTime(text) {
  const m = DATE_TIME.exec(text);
  if (!m) return null;
  const [year, month, day, hours, minutes, seconds] = m.slice(1).map((x) => Number(x ?? 0));
  const d = new Date(year, month - 1, day, hours, minutes, seconds);
  const same =
    d.getFullYear() === year && d.getMonth() === month - 1 && d.getDate() === day &&
    d.getHours() === hours && d.getMinutes() === minutes;
  return same ? d.getTime() / 1000 : null;
}

export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

/** A badge's text and state (its class); a node's own name in `data-role` stays a class. */
export function badge(node, text, kind) {
  node.textContent = text;
  const role = node.dataset.role ? ` ${node.dataset.role}` : "";
  node.className = `badge ${kind || text}${role}`;
}

export function setConn(text, kind) {
  const node = $("#conn");
  if (node) badge(node, text, kind);
}

/** Marks the page's script as loaded (the "did not load" notice goes away). */
export function ready() {
  $("#noscript")?.remove();
}

/**
 * The live WebSocket, reconnecting with backoff while the server is there. `handlers[type]`
 * gets each message's data and the whole message.
 */
export function connect(handlers) {
  let delay = 500;
  let stopped = false;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    socket.onopen = () => {
      delay = 500;
      setConn("live", "up");
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const handler = handlers[message.type];
      if (handler) handler(message.data, message);
    };
    socket.onclose = (event) => {
      if (stopped) return;
      if (event.code === 1001) {
        stopped = true;
        setConn("run ended", "ended");
        handlers.closed?.(event);
        return;
      }
      setConn("reconnecting", "down");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open();
}

/**
 * The device selector of the history and run pages: `names` (the log's or the run's devices)
 * as options after "all devices", shown only when there are several (or the address names
 * one); starts on `chosen`. `onChange(name)` gets the name chosen ("" for every device); the
 * address's `?device=` follows the choice, so a reload or a shared link shows the same.
 */
export function deviceChoice(names, chosen, onChange) {
  const select = $("#device");
  const options = [el("option", { value: "", text: "all devices" })];
  for (const name of names) options.push(el("option", { value: name, text: name }));
  if (chosen && !names.includes(chosen)) options.push(el("option", { value: chosen, text: chosen }));
  select.replaceChildren(...options);
  select.value = chosen;
  $("#device-choice").hidden = names.length < 2 && !chosen;
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    if (select.value) url.searchParams.set("device", select.value);
    else url.searchParams.delete("device");
    history.replaceState(history.state, "", url);
    onChange(select.value);
  });
}

/** The query parameter that selects `device` ("" for every device: none). */
export function deviceQuery(device) {
  return device ? `&device=${encodeURIComponent(device)}` : "";
}
