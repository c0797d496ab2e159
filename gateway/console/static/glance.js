// Glance: today's numbers for this instance and their hourly shape. Refreshes every 30 s.

import { getJSON } from "./api.js";
import { errorBanner } from "./app.js";
import { barChart } from "./charts.js";
import { clear, el } from "./dom.js";

const REFRESH_MS = 30000;

const TILES = [
  ["calls_today", "Calls today", (g) => g.calls_today],
  ["p50", "Reply latency p50", (g) => ms(g.reply_latency_ms && g.reply_latency_ms.p50)],
  ["p95", "Reply latency p95", (g) => ms(g.reply_latency_ms && g.reply_latency_ms.p95)],
  ["barge_ins", "Barge-ins", (g) => g.barge_ins],
  ["tool_errors", "Tool errors", (g) => g.tool_errors],
  ["live_reconnects", "Live reconnects", (g) => g.live_reconnects],
];
const CHARTS = [
  ["calls", "Calls per hour", ""],
  ["barge_ins", "Barge-ins per hour", "warn"],
  ["tool_errors", "Tool errors per hour", "bad"],
  ["reconnects", "Reconnects per hour", "recon"],
];

function ms(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  return [String(Math.round(Number(value))), el("small", {}, " ms")];
}

export async function mount(view) {
  const body = el("div");
  view.append(el("div", { class: "page-head" }, el("h1", {}, "Glance"),
    el("span", { class: "sub", id: "glance-updated" })), body);
  const updated = view.querySelector("#glance-updated");

  async function load() {
    let glance;
    try {
      glance = await getJSON("/glance");
    } catch (error) {
      clear(body).append(errorBanner("Cannot load today's figures", error));
      return;
    }
    const hourly = glance.hourly || [];
    const labels = hourly.map((h, i) => hourLabel(h.hour ?? i));
    clear(body).append(
      el("div", { class: "grid tiles" }, TILES.map(([key, label, value]) => {
        const shown = value(glance);
        return el("section", { class: "card tile", "data-tile": key, "aria-label": label },
          el("div", { class: "label" }, label),
          el("div", { class: "value" }, shown === null || shown === undefined ? "–" : shown));
      })),
      el("div", { class: "grid charts", style: "margin-top:1rem" }, CHARTS.map(([key, title, tone]) =>
        el("section", { class: "card", "data-chart": key, "aria-labelledby": `chart-${key}` },
          el("h2", { id: `chart-${key}` }, title),
          barChart({ values: hourly.map((h) => Number(h[key]) || 0), labels, title, tone })))),
    );
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

function hourLabel(hour) {
  if (typeof hour === "number") return `${String(hour).padStart(2, "0")}:00`;
  const date = new Date(hour);
  if (!Number.isNaN(date.getTime())) return `${String(date.getHours()).padStart(2, "0")}:00`;
  return String(hour);
}
