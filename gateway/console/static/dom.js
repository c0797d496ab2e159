// Tiny DOM helpers and formatting shared by the console's pages. Text always goes in through
// textContent (never innerHTML): transcripts and agent errors are not markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.setAttribute("class", value);
    else if (key === "text") element.textContent = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** el("a", {href, class, onclick}, ...children) */
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** 0:07, 1:02:03 */
export function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** "2026-12-03 15:04:05" in the browser's time zone, or "–". */
export function dateTime(value) {
  const date = value ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) return value ? String(value) : "–";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** A transcript/event time as seconds from the start of the call (numbers or ISO times). */
export function offsetSeconds(t, startedAt) {
  if (typeof t === "number") return t;
  const asNumber = Number(t);
  if (t !== null && t !== "" && Number.isFinite(asNumber)) return asNumber;
  const at = Date.parse(t);
  const start = Date.parse(startedAt);
  if (Number.isFinite(at) && Number.isFinite(start)) return Math.max(0, (at - start) / 1000);
  return 0;
}

export const humanize = (value) => String(value ?? "").replaceAll("_", " ");

export function stateBadge(state) {
  return el("span", { class: "badge", "data-state": state || "unknown" }, humanize(state || "unknown"));
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}
