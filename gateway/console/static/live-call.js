// One live call: its transcript as it happens, caller/agent levels, and a hang-up button.

import { elapsed, getJSON, post, store, subscribe } from "./api.js";
import { errorBanner, setTitle } from "./app.js";
import { clock, dateTime, el, humanize, offsetSeconds, stateBadge } from "./dom.js";

const FLOOR_DB = -60;

function meter(who, label) {
  const bar = el("span");
  const value = el("span", { class: "db" }, "–");
  const track = el("div", {
    class: "level", role: "meter", id: `level-${who}`, "aria-label": `${label} level`,
    "aria-valuemin": FLOOR_DB, "aria-valuemax": 0, "aria-valuenow": FLOOR_DB, "aria-valuetext": "silent",
  }, bar);
  const row = el("div", { class: `meter-row ${who}` }, el("span", { class: "who" }, label), track, value);
  return {
    row,
    set(db) {
      const level = Number.isFinite(db) ? Math.max(FLOOR_DB, Math.min(0, db)) : FLOOR_DB;
      bar.style.width = `${((level - FLOOR_DB) / -FLOOR_DB) * 100}%`;
      track.setAttribute("aria-valuenow", level.toFixed(0));
      track.setAttribute("aria-valuetext", level <= FLOOR_DB ? "silent" : `${level.toFixed(0)} dBFS`);
      track.dataset.db = Number.isFinite(db) ? db.toFixed(1) : "";
      value.textContent = level <= FLOOR_DB ? "–" : `${level.toFixed(0)} dB`;
    },
  };
}

export async function mount(view, [id]) {
  const title = el("h1", {}, "Call");
  const state = el("span", { id: "call-state" });
  const notice = el("div", { id: "call-notice" });
  const facts = el("dl", { class: "facts" });
  const duration = el("dd", { id: "call-duration" }, "–");
  const lines = el("div", { class: "transcript", id: "live-transcript", "aria-live": "polite", "aria-relevant": "additions" });
  const noLines = el("p", { class: "muted" }, "Nothing said yet.");
  const caller = meter("caller", "Caller");
  const agent = meter("agent", "Agent");
  const hangup = el("button", { type: "button", class: "btn-danger", id: "hangup" }, "Hang up");
  const status = el("p", { class: "status-line", role: "status", id: "hangup-status" });
  const dialog = el("dialog", { id: "confirm-hangup", "aria-labelledby": "confirm-title" },
    el("h2", { id: "confirm-title" }, "Hang up this call?"),
    el("p", { class: "muted" }, "The caller is disconnected at once. The recording is kept."),
    el("form", { method: "dialog", class: "actions" },
      el("button", { value: "cancel", type: "submit" }, "Cancel"),
      el("button", { value: "hangup", type: "submit", class: "btn-danger", id: "confirm-hangup-yes" }, "Hang up")));

  view.append(
    el("div", { class: "crumbs" }, el("a", { href: "/console" }, "Live calls"), " / ", el("span", { class: "mono" }, id)),
    el("div", { class: "page-head" }, title, state),
    notice,
    el("div", { class: "grid two" },
      el("section", { class: "card", "aria-labelledby": "transcript-h" },
        el("h2", { id: "transcript-h" }, "Transcript"), noLines, lines),
      el("div", {},
        el("section", { class: "card", "aria-labelledby": "levels-h" },
          el("h2", { id: "levels-h" }, "Levels"),
          el("div", { class: "meters" }, caller.row, agent.row)),
        el("section", { class: "card", "aria-labelledby": "facts-h" },
          el("h2", { id: "facts-h" }, "Call"), facts,
          el("div", { style: "margin-top:1rem" }, hangup, status)))),
    dialog,
  );
  caller.set(-Infinity);
  agent.set(-Infinity);

  let current = null;
  function showCall() {
    const live = store.calls.get(id);
    const ended = store.ended.get(id);
    current = live || ended || current;
    if (!current) {
      if (store.loaded) {
        notice.replaceChildren(el("div", { class: "banner info", role: "status" },
          el("div", {}, el("strong", {}, "This call is not in progress."),
            "It may have ended: ", el("a", { href: `/console/history?q=${encodeURIComponent(id)}` }, "look for it in History"), ".")));
        hangup.disabled = true;
      }
      return;
    }
    const label = `${current.from || "unknown"} → ${current.to || "unknown"}`;
    title.textContent = label;
    setTitle(label);
    const rows = [
      ["Agent", current.agent], ["Carrier", current.carrier], ["From", current.from], ["To", current.to],
      ["Started", dateTime(current.started_at)], ["Stream", current.stream_sid],
    ];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "–")]), el("dt", {}, "Duration"), duration);
    if (!live && ended) {
      state.replaceChildren(stateBadge("ended"));
      notice.replaceChildren(el("div", { class: "banner info", role: "status", id: "ended-banner" },
        el("div", {}, el("strong", {}, "Call ended"), humanize(ended.end_reason || "ended"))));
      hangup.disabled = true;
      caller.set(-Infinity);
      agent.set(-Infinity);
    } else {
      state.replaceChildren(stateBadge(current.state || "listening"));
      notice.replaceChildren();
    }
    tick();
  }
  function tick() {
    if (current && store.calls.has(id)) duration.textContent = clock(elapsed(current));
    else if (current && typeof current.duration_s === "number") duration.textContent = clock(current.duration_s);
  }

  // A line is keyed by its role and start time: the event stream sends fragments with the line
  // they belong to (line_t, line_text), so a fragment grows its line instead of adding one.
  const shown = new Map();
  function addLine({ t, role, text, line_t: lineT, line_text: lineText }) {
    noLines.hidden = true;
    const start = lineT ?? t;
    const key = lineT === undefined ? null : `${role}@${start}`;
    const full = lineText ?? text;
    const existing = key === null ? null : shown.get(key);
    if (existing) {
      if (full.length >= existing.textContent.length) existing.textContent = full; // lines only grow
    } else {
      const seconds = offsetSeconds(start, current && current.started_at);
      const body = el("span", { class: "text" }, full);
      lines.append(el("div", { class: `tline ${role}` },
        el("span", { class: "t" }, clock(seconds)), el("span", { class: "role" }, humanize(role)), body));
      if (key !== null) shown.set(key, body);
    }
    lines.scrollTop = lines.scrollHeight;
  }

  // Lines that arrive while the transcript so far loads are kept and added after it.
  let buffered = [];
  const unsubscribe = [
    subscribe("transcript", (line) => {
      if (line.id !== id) return;
      if (buffered) buffered.push(line);
      else addLine(line);
    }),
    subscribe("levels", (levels) => {
      if (levels.id !== id || !store.calls.has(id)) return;
      caller.set(levels.caller_db ?? -Infinity);
      agent.set(levels.agent_db ?? -Infinity);
    }),
  ];
  const onStore = (event) => {
    if (event.detail.id === null || event.detail.id === id) showCall();
  };
  store.addEventListener("change", onStore);
  const timer = setInterval(tick, 1000);

  hangup.addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "hangup") return;
    dialog.returnValue = "";
    hangup.disabled = true;
    status.textContent = "Hanging up…";
    try {
      await post(`/calls/${encodeURIComponent(id)}/hangup`);
      status.textContent = "Hang-up requested.";
    } catch (error) {
      status.textContent = `Could not hang up: ${error.message}`;
      hangup.disabled = !store.calls.has(id);
    }
  });

  showCall();
  try {
    const body = await getJSON(`/calls/${encodeURIComponent(id)}/transcript`);
    // Lines from the snapshot are keyed like the stream's, so buffered fragments merge into them.
    for (const line of body.lines || []) addLine({ ...line, line_t: line.t, line_text: line.text });
  } catch (error) {
    if (error.status !== 404) notice.append(errorBanner("Cannot load the transcript", error));
  }
  for (const line of buffered) addLine(line);
  buffered = null;

  return () => {
    unsubscribe.forEach((off) => off());
    store.removeEventListener("change", onStore);
    clearInterval(timer);
    if (dialog.open) dialog.close();
  };
}
