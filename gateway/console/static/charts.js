// A small SVG bar chart: one bar per hour, a baseline, hour labels every 6 hours, and each
// bar's value in its tooltip. Accessible name summarises the series.

import { svg } from "./dom.js";

const W = 300;
const H = 110;
const BOTTOM = 16;
const LEFT = 4;

export function barChart({ values, labels, title, tone = "" }) {
  const max = Math.max(1, ...values);
  const slot = (W - LEFT * 2) / Math.max(1, values.length);
  const plot = H - BOTTOM - 14;
  const total = values.reduce((a, b) => a + b, 0);
  const peakIndex = values.indexOf(Math.max(...values));
  const bars = values.map((value, i) => {
    const h = value ? Math.max(2, (value / max) * plot) : 0;
    return svg("rect", {
      class: `bar ${tone}`, x: (LEFT + i * slot + 1).toFixed(1), y: (H - BOTTOM - h).toFixed(1),
      width: Math.max(1, slot - 2).toFixed(1), height: h.toFixed(1), rx: 1.5, "data-value": value,
    }, svg("title", {}, `${labels[i]}: ${value}`));
  });
  const marks = labels.map((label, i) => (i % 6 === 0
    ? svg("text", { x: (LEFT + i * slot + 1).toFixed(1), y: H - 3 }, label) : null));
  const summary = `${title}: ${total} in total` + (total ? `, most at ${labels[peakIndex]} (${values[peakIndex]})` : "");
  return svg("svg", { class: "bars", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary },
    svg("text", { x: W - LEFT, y: 10, "text-anchor": "end" }, `max ${max}`),
    svg("line", { class: "axis", x1: LEFT, x2: W - LEFT, y1: H - BOTTOM + 0.5, y2: H - BOTTOM + 0.5 }),
    ...bars, ...marks);
}
