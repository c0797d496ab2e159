// Live calls: every call in progress on this instance, kept current by the event stream.

import { elapsed, store } from "./api.js";
import { errorBanner, navigate } from "./app.js";
import { clock, el, humanize, stateBadge } from "./dom.js";

export function mount(view) {
  const body = el("tbody");
  const count = el("span", { class: "sub", id: "live-count" });
  const problem = el("div");
  const empty = el("div", { class: "empty", id: "live-empty" }, "No calls in progress.");
  const table = el("table", { class: "data", id: "live-calls" },
    el("caption", { class: "visually-hidden" }, "Calls in progress"),
    el("thead", {}, el("tr", {},
      ["Agent", "Carrier", "From", "To", "Duration", "State", "Last line"].map((h) => el("th", { scope: "col", class: h === "Duration" ? "num" : null }, h)))),
    body);
  view.append(
    el("div", { class: "page-head" }, el("h1", {}, "Live calls"), count),
    problem,
    el("div", { class: "card flush" }, table, empty),
  );

  const rows = new Map(); // id → { row, cells }

  function rowFor(call) {
    let entry = rows.get(call.id);
    if (!entry) {
      const href = `/console/calls/${encodeURIComponent(call.id)}`;
      const cells = {
        agent: el("a", { class: "row-link", href }),
        carrier: el("td"), from: el("td", { class: "mono" }), to: el("td", { class: "mono" }),
        duration: el("td", { class: "num" }), state: el("td"), line: el("td", { class: "line" }),
      };
      const row = el("tr", {
        class: "clickable", "data-call-id": call.id,
        onclick: (event) => {
          if (!event.target.closest("a")) navigate(href);
        },
      }, el("td", {}, cells.agent), cells.carrier, cells.from, cells.to, cells.duration, cells.state, cells.line);
      entry = { row, cells };
      rows.set(call.id, entry);
    }
    return entry;
  }

  function fill(call) {
    const { cells } = rowFor(call);
    cells.agent.textContent = call.agent || "–";
    cells.carrier.textContent = call.carrier || "–";
    cells.from.textContent = call.from || "–";
    cells.to.textContent = call.to || "–";
    cells.duration.textContent = clock(elapsed(call));
    const state = call.state || "listening";
    if (cells.state.dataset.state !== state) {
      cells.state.dataset.state = state;
      cells.state.replaceChildren(stateBadge(state));
    }
    const line = call.last_line;
    cells.line.replaceChildren(...(line && line.text ? [el("b", {}, `${humanize(line.role)}: `), line.text] : ["–"]));
    cells.line.title = line && line.text ? line.text : "";
  }

  function refresh() {
    problem.replaceChildren(...(store.error ? [errorBanner("Cannot list live calls", store.error)] : []));
    const calls = [...store.calls.values()].sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
    for (const [id, entry] of rows) {
      if (!store.calls.has(id)) {
        entry.row.remove();
        rows.delete(id);
      }
    }
    calls.forEach((call, index) => {
      fill(call);
      const { row } = rows.get(call.id);
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    });
    table.hidden = calls.length === 0;
    empty.hidden = calls.length !== 0 || !store.loaded;
    count.textContent = store.loaded ? `${calls.length} in progress` : "loading…";
  }

  const tick = () => {
    for (const call of store.calls.values()) {
      const entry = rows.get(call.id);
      if (entry) entry.cells.duration.textContent = clock(elapsed(call));
    }
  };
  store.addEventListener("change", refresh);
  const timer = setInterval(tick, 1000);
  refresh();
  return () => {
    store.removeEventListener("change", refresh);
    clearInterval(timer);
  };
}
