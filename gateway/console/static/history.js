// History: recorded calls, searchable by number or id, filtered by agent, end reason and date.
// The filters live in the address (?q=&agent=…&page=), so a search can be bookmarked.

import { getJSON, query } from "./api.js";
import { errorBanner, navigate } from "./app.js";
import { clock, dateTime, el, humanize } from "./dom.js";

// gateway.call.outcome.EndReason (keep in step with it).
const END_REASONS = [
  "caller_hung_up", "caller_disconnected", "operator_hung_up", "agent_ended", "end_phrase", "transferred",
  "max_duration", "idle_timeout", "no_start", "live_connect_failed", "live_closed",
  "live_failed", "gateway_shutdown", "internal_error", "unsupported_audio", "caller_audio_flood",
];
const PAGE_SIZE = 25;
const FIELDS = ["q", "agent", "end_reason", "date_from", "date_to"];

export async function mount(view, _params, search) {
  const form = el("form", { class: "card toolbar", role: "search", id: "history-filters" });
  const input = (name, label, { tag = "input", grow = false, ...attrs }) => {
    const control = el(tag, { id: `f-${name}`, name, ...attrs });
    return { control, field: el("div", { class: `field${grow ? " grow" : ""}` }, el("label", { for: `f-${name}` }, label), control) };
  };
  const q = input("q", "Search number or call id", { type: "search", placeholder: "+1555…, CA…", grow: true, autocomplete: "off" });
  const agent = input("agent", "Agent", { tag: "select" });
  const reason = input("end_reason", "End reason", { tag: "select" });
  const from = input("date_from", "From", { type: "date" });
  const to = input("date_to", "To", { type: "date" });
  agent.control.append(el("option", { value: "" }, "All agents"));
  reason.control.append(el("option", { value: "" }, "Any end reason"),
    ...END_REASONS.map((r) => el("option", { value: r }, humanize(r))));
  const reset = el("button", { type: "button", id: "f-reset" }, "Clear");
  form.append(q.field, agent.field, reason.field, from.field, to.field,
    el("div", { class: "field" }, el("button", { type: "submit", class: "btn-primary" }, "Search")),
    el("div", { class: "field" }, reset));
  const controls = { q: q.control, agent: agent.control, end_reason: reason.control, date_from: from.control, date_to: to.control };

  const summary = el("span", { class: "sub", id: "history-summary", role: "status" });
  const problem = el("div");
  const body = el("tbody");
  const table = el("table", { class: "data", id: "history-table" },
    el("caption", { class: "visually-hidden" }, "Recorded calls"),
    el("thead", {}, el("tr", {},
      ["Started", "Agent", "Carrier", "From", "To", "Duration", "End reason"].map((h) => el("th", { scope: "col", class: h === "Duration" ? "num" : null }, h)))),
    body);
  const empty = el("div", { class: "empty", id: "history-empty", hidden: true }, "No recorded calls match.");
  const prev = el("button", { type: "button", id: "page-prev" }, "← Previous");
  const next = el("button", { type: "button", id: "page-next" }, "Next →");
  const pageLabel = el("span", { class: "muted", id: "page-label" });
  view.append(
    el("div", { class: "page-head" }, el("h1", {}, "History"), summary),
    form, problem,
    el("div", { class: "card flush", style: "margin-top:1rem" }, table, empty,
      el("nav", { class: "pager", "aria-label": "Pages" }, pageLabel, prev, next)),
  );

  // The agent filter lists the configured agents; one from the address is there at once, so
  // the first search already uses it.
  const wantedAgent = search.get("agent") || "";
  if (wantedAgent) agent.control.append(el("option", { value: wantedAgent }, wantedAgent));
  for (const name of FIELDS) controls[name].value = search.get(name) || "";
  let page = Math.max(1, Number(search.get("page")) || 1);
  let generation = 0;
  getJSON("/agents").then((body) => {
    const names = (body.agents || []).map((a) => a.name).filter((name) => name !== wantedAgent);
    agent.control.append(...names.map((name) => el("option", { value: name }, name)));
  }).catch(() => {});

  function filters() {
    return Object.fromEntries(FIELDS.map((name) => [name, controls[name].value.trim()]));
  }

  async function load() {
    const wanted = { ...filters(), page: page > 1 ? page : "" };
    history.replaceState(null, "", `/console/history${query(wanted)}`);
    const mine = ++generation;
    summary.textContent = "loading…";
    table.setAttribute("aria-busy", "true");
    let result;
    try {
      result = await getJSON(`/history${query({ ...filters(), page, page_size: PAGE_SIZE })}`);
    } catch (error) {
      if (mine !== generation) return;
      problem.replaceChildren(errorBanner("Cannot search the history", error));
      summary.textContent = "";
      table.removeAttribute("aria-busy");
      return;
    }
    if (mine !== generation) return;
    problem.replaceChildren();
    table.removeAttribute("aria-busy");
    const items = result.items || [];
    const size = result.page_size || PAGE_SIZE;
    const total = result.total ?? items.length;
    const pages = Math.max(1, Math.ceil(total / size));
    page = result.page || page;
    showRows(items);
    const first = total ? (page - 1) * size + 1 : 0;
    summary.textContent = `${total} call${total === 1 ? "" : "s"}`;
    pageLabel.textContent = total ? `${first}–${first + items.length - 1} of ${total} · page ${page} of ${pages}` : "";
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    empty.hidden = items.length !== 0;
    table.hidden = items.length === 0;
  }

  function showRows(items) {
    body.replaceChildren(...items.map((item) => {
      const href = `/console/history/${encodeURIComponent(item.id)}`;
      return el("tr", {
        class: "clickable", "data-history-id": item.id,
        onclick: (event) => {
          if (!event.target.closest("a")) navigate(href);
        },
      },
      el("td", {}, el("a", { class: "row-link", href }, dateTime(item.started_at))),
      el("td", {}, item.agent || "–"),
      el("td", {}, item.carrier || "–"),
      el("td", { class: "mono" }, item.from || "–"),
      el("td", { class: "mono" }, item.to || "–"),
      el("td", { class: "num" }, clock(item.duration_s)),
      el("td", {}, el("span", { class: `badge plain${isTrouble(item.end_reason) ? " bad" : ""}` }, humanize(item.end_reason || "–"))));
    }));
  }

  let typing = null;
  const restart = () => {
    page = 1;
    load();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(typing);
    restart();
  });
  q.control.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(restart, 300);
  });
  for (const name of ["agent", "end_reason", "date_from", "date_to"]) controls[name].addEventListener("change", restart);
  reset.addEventListener("click", () => {
    for (const name of FIELDS) controls[name].value = "";
    restart();
  });
  prev.addEventListener("click", () => {
    page -= 1;
    load();
  });
  next.addEventListener("click", () => {
    page += 1;
    load();
  });

  await load();
  return () => {
    clearTimeout(typing);
    generation += 1;
  };
}

function isTrouble(reason) {
  return /failed|error|flood|unsupported|no_start/.test(reason || "");
}
