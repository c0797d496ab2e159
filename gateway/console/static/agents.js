// Agents: what each configured agent answers (lines, carriers), with which model, voice and
// tools, whether it passes its check, and whether the last reload of the agents worked.

import { getJSON } from "./api.js";
import { errorBanner } from "./app.js";
import { dateTime, el } from "./dom.js";

const chips = (items) => (items && items.length
  ? el("div", { class: "chips" }, items.map((item) => el("span", { class: "chip" }, typeof item === "string" ? item : item.name || JSON.stringify(item))))
  : el("span", { class: "muted" }, "–"));

export async function mount(view) {
  let body;
  try {
    body = await getJSON("/agents");
  } catch (error) {
    view.append(el("div", { class: "page-head" }, el("h1", {}, "Agents")), errorBanner("Cannot list the agents", error));
    return;
  }
  const agents = body.agents || [];
  const reload = body.reload || null;
  const broken = agents.filter((a) => a.check && a.check.ok === false).length;
  const banner = [];
  if (reload && reload.ok === false) {
    banner.push(el("div", { class: "banner error", role: "alert", id: "reload-error" },
      el("div", {}, el("strong", {}, `The last agent reload failed${reload.at ? ` (${dateTime(reload.at)})` : ""}; the agents below are still the ones in use.`),
        el("pre", {}, reload.error || "unknown error"))));
  }
  view.append(
    el("div", { class: "page-head" }, el("h1", {}, "Agents"),
      el("span", { class: "sub" }, `${agents.length} configured${broken ? ` · ${broken} failing checks` : ""}` +
        (reload && reload.ok && reload.at ? ` · reloaded ${dateTime(reload.at)}` : ""))),
    ...banner,
    el("div", { class: "card flush" }, agents.length ? el("table", { class: "data", id: "agents-table" },
      el("caption", { class: "visually-hidden" }, "Configured agents"),
      el("thead", {}, el("tr", {}, ["Agent", "Lines", "Carriers", "Model", "Voice", "Tools", "Check"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, agents.map((agent) => {
        const check = agent.check || { ok: true, errors: [] };
        return el("tr", { "data-agent": agent.name, "data-check": check.ok ? "ok" : "failed" },
          el("td", {}, el("strong", {}, agent.name), agent.source ? el("div", { class: "mono muted" }, agent.source) : null),
          el("td", {}, chips(agent.lines)),
          el("td", {}, chips(agent.carriers)),
          el("td", { class: "mono" }, agent.model || "–"),
          el("td", {}, agent.voice || "–"),
          el("td", {}, chips(agent.tools)),
          el("td", {}, check.ok
            ? el("span", { class: "badge ok" }, "ok")
            : [el("span", { class: "badge bad" }, `${(check.errors || []).length || 1} error${(check.errors || []).length === 1 ? "" : "s"}`),
              el("ul", { class: "errors" }, (check.errors || []).map((e) => el("li", {}, String(e))))]));
      }))) : el("div", { class: "empty" }, "No agents configured.")),
  );
}
