// The operator console: a small client-side router over plain ES modules (no build step).
// Pages are modules exporting `mount(view, params, search)`, which may return a cleanup
// function called when the operator navigates away.

import { connectEvents, connectionState, getJSON, onConnection } from "./api.js";
import { clear, el } from "./dom.js";

const ROUTES = [
  { pattern: /^\/console(\/calls)?\/?$/, nav: "live", title: "Live calls", load: () => import("./live.js"), page: "live" },
  { pattern: /^\/console\/calls\/([^/]+)$/, nav: "live", title: "Live call", load: () => import("./live-call.js"), page: "live-call" },
  { pattern: /^\/console\/history\/?$/, nav: "history", title: "History", load: () => import("./history.js"), page: "history" },
  { pattern: /^\/console\/history\/([^/]+)$/, nav: "history", title: "Call", load: () => import("./call.js"), page: "call" },
  { pattern: /^\/console\/agents\/?$/, nav: "agents", title: "Agents", load: () => import("./agents.js"), page: "agents" },
  { pattern: /^\/console\/glance\/?$/, nav: "glance", title: "Glance", load: () => import("./glance.js"), page: "glance" },
];

const view = document.getElementById("view");
let cleanup = null;
let instanceName = "";
let renderCount = 0;

export function navigate(path, { replace = false } = {}) {
  if (path !== location.pathname + location.search) {
    history[replace ? "replaceState" : "pushState"](null, "", path);
  }
  return render();
}

async function render() {
  const count = ++renderCount;
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.error(error);
    }
    cleanup = null;
  }
  const route = ROUTES.find((r) => r.pattern.test(location.pathname));
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (route && link.dataset.nav === route.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(view);
  view.setAttribute("aria-busy", "true");
  if (!route) {
    document.body.dataset.page = "not-found";
    view.append(el("div", { class: "card empty" }, "No such page. ", el("a", { href: "/console" }, "Live calls")));
    view.removeAttribute("aria-busy");
    return;
  }
  document.body.dataset.page = route.page;
  setTitle(route.title);
  const params = location.pathname.match(route.pattern).slice(1).map(decodeURIComponent);
  try {
    const module = await route.load();
    if (count !== renderCount) return;
    const result = await module.mount(view, params, new URLSearchParams(location.search));
    if (count !== renderCount) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? result : null;
  } catch (error) {
    if (count !== renderCount) return;
    clear(view);
    view.append(errorBanner("This page could not be loaded", error));
  } finally {
    if (count === renderCount) view.removeAttribute("aria-busy");
  }
}

export function setTitle(title) {
  document.title = `${title} · ${instanceName || "Gateway"} console`;
}

export function errorBanner(title, error) {
  const expired = error && error.status === 401;
  return el("div", { class: "banner error", role: "alert" },
    el("div", {}, el("strong", {}, expired ? "Your console session has ended" : title),
      el("pre", {}, expired
        ? "Open the console's sign-in link (/console?token=…) again."
        : String(error && error.message ? error.message : error))));
}

// Same-origin links under /console are handled here; anything else (downloads, new tabs) not.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/console")) return;
  if (url.pathname.startsWith("/console/api/") || url.pathname.startsWith("/console/static/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  view.focus({ preventScroll: true });
});
window.addEventListener("popstate", () => render());

function showConnection() {
  const badge = document.getElementById("conn");
  badge.dataset.state = connectionState;
  badge.textContent = { open: "live", connecting: "connecting…", error: "disconnected" }[connectionState];
}

async function loadInstance() {
  try {
    const info = await getJSON("/instance");
    instanceName = info.instance || "";
    const badge = document.getElementById("instance");
    badge.textContent = instanceName || "gateway";
    badge.title = [info.version && `version ${info.version}`, info.started_at && `up since ${info.started_at}`]
      .filter(Boolean).join(" · ");
    const route = ROUTES.find((r) => r.pattern.test(location.pathname));
    if (route) setTitle(route.title);
  } catch (error) {
    document.getElementById("instance").textContent = "unknown instance";
  }
}

// The login link (?token=…) has set the session cookie; keep the token out of the address bar.
const search = new URLSearchParams(location.search);
if (search.has("token")) {
  search.delete("token");
  const rest = search.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
}

onConnection(showConnection);
showConnection();
connectEvents();
loadInstance();
render();
window.consoleApp = { navigate };
