// A recorded call's two channels as an SVG: caller lane above, agent lane below, one bar per
// pixel column (the loudest envelope value in it), event markers across both lanes, a time
// axis and a playhead. Keyboard: it is a slider (←/→ 5 s, Home/End).

import { clock, el, svg } from "./dom.js";

const WIDTH = 1200;
const LANE = 64;
const GAP = 10;
const TOP = 14; // room for the marker flags
const AXIS = 18;
const LABEL_W = 54;
export const MARKED_KINDS = ["barge_in", "tool_call", "reconnect", "error"];
const KIND_LABELS = { barge_in: "Barge-in", tool_call: "Tool call", reconnect: "Reconnect", error: "Error" };

function lanePath(values, rateHz, duration, y0, plot) {
  const columns = Math.max(1, Math.floor(plot / 2)); // a bar every 2 px
  const perColumn = duration / columns;
  let d = "";
  for (let c = 0; c < columns; c++) {
    const from = Math.floor(c * perColumn * rateHz);
    const to = Math.max(from + 1, Math.floor((c + 1) * perColumn * rateHz));
    let peak = 0;
    for (let i = from; i < to && i < values.length; i++) peak = Math.max(peak, values[i] || 0);
    const h = Math.max(1, Math.min(1, peak) * (LANE - 6));
    const x = LABEL_W + c * (plot / columns);
    const y = y0 + (LANE - h) / 2;
    d += `M${x.toFixed(1)} ${y.toFixed(1)}h1.4v${h.toFixed(1)}h-1.4Z`;
  }
  return d;
}

function niceStep(duration) {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) {
    if (duration / step <= 12) return step;
  }
  return 7200;
}

/**
 * waveform({caller, agent, rateHz, duration, events, onSeek}) → {element, setTime(seconds)}
 * events: [{seconds, kind, detail}] — the ones of MARKED_KINDS are drawn.
 */
export function waveform({ caller = [], agent = [], rateHz = 50, duration, events = [], onSeek }) {
  const length = Math.max(caller.length, agent.length) / (rateHz || 50);
  const total = duration > 0 ? duration : Math.max(length, 1);
  const plot = WIDTH - LABEL_W;
  const height = TOP + LANE * 2 + GAP + AXIS;
  const x = (t) => LABEL_W + (Math.max(0, Math.min(total, t)) / total) * plot;
  const callerY = TOP;
  const agentY = TOP + LANE + GAP;

  const ticks = [];
  const step = niceStep(total);
  for (let t = 0; t <= total + 1e-6; t += step) {
    ticks.push(svg("line", { class: "tick", x1: x(t), x2: x(t), y1: TOP, y2: agentY + LANE }),
      svg("text", { class: "tick-label", x: x(t) + 3, y: height - 4 }, clock(t)));
  }

  const markers = events.filter((e) => MARKED_KINDS.includes(e.kind)).map((event) => {
    const at = x(event.seconds);
    const detail = typeof event.detail === "string" ? event.detail : event.detail ? JSON.stringify(event.detail) : "";
    return svg("g", { class: `marker ${event.kind}`, "data-kind": event.kind, "data-t": event.seconds.toFixed(2) },
      svg("title", {}, `${KIND_LABELS[event.kind]} at ${clock(event.seconds)}${detail ? ` — ${detail}` : ""}`),
      svg("line", { x1: at, x2: at, y1: TOP - 2, y2: agentY + LANE }),
      svg("path", { d: `M${at - 5} 0h10l-5 ${TOP - 4}Z` }));
  });

  const playhead = svg("line", { class: "playhead", x1: LABEL_W, x2: LABEL_W, y1: 2, y2: agentY + LANE });
  const root = svg("svg", {
    class: "waveform", id: "waveform", viewBox: `0 0 ${WIDTH} ${height}`,
    role: "slider", tabindex: 0, "aria-label": "Playback position (caller above, agent below)",
    "aria-valuemin": 0, "aria-valuemax": total.toFixed(1), "aria-valuenow": 0,
  },
  svg("rect", { class: "lane-bg", x: LABEL_W, y: callerY, width: plot, height: LANE, rx: 4 }),
  svg("rect", { class: "lane-bg", x: LABEL_W, y: agentY, width: plot, height: LANE, rx: 4 }),
  svg("text", { class: "lane-label", x: 0, y: callerY + LANE / 2 + 4 }, "Caller"),
  svg("text", { class: "lane-label", x: 0, y: agentY + LANE / 2 + 4 }, "Agent"),
  ...ticks,
  svg("path", { class: "lane-caller", "data-lane": "caller", d: lanePath(caller, rateHz, total, callerY, plot) }),
  svg("path", { class: "lane-agent", "data-lane": "agent", d: lanePath(agent, rateHz, total, agentY, plot) }),
  svg("g", { class: "markers" }, markers),
  playhead);

  let now = 0;
  function setTime(seconds) {
    now = Math.max(0, Math.min(total, seconds || 0));
    const at = x(now);
    playhead.setAttribute("x1", at);
    playhead.setAttribute("x2", at);
    root.setAttribute("aria-valuenow", now.toFixed(1));
    root.setAttribute("aria-valuetext", `${clock(now)} of ${clock(total)}`);
  }
  root.addEventListener("click", (event) => {
    const box = root.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * WIDTH;
    if (px >= LABEL_W && onSeek) onSeek(((px - LABEL_W) / plot) * total);
  });
  root.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: now - 5, ArrowRight: now + 5, Home: 0, End: total, PageUp: now - 30, PageDown: now + 30 };
    if (event.key in moves && onSeek) {
      event.preventDefault();
      onSeek(Math.max(0, Math.min(total, moves[event.key])));
    }
  });
  setTime(0);

  const present = new Set(events.map((e) => e.kind));
  const legend = el("div", { class: "legend" },
    el("span", { style: "--c: var(--caller)" }, "Caller"),
    el("span", { style: "--c: var(--agent)" }, "Agent"),
    ...MARKED_KINDS.filter((k) => present.has(k)).map((k) =>
      el("span", { style: `--c: var(--marker-${{ barge_in: "barge", tool_call: "tool" }[k] || k})` },
        `${KIND_LABELS[k]} (${events.filter((e) => e.kind === k).length})`)));
  return { element: el("div", { class: "wave-wrap" }, root, legend), setTime, duration: total };
}
