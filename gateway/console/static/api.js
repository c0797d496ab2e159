// The console's backend: JSON over fetch (the console_session cookie authenticates it) and one
// shared EventSource for live events, plus the live-call store the Live pages render from.

const BASE = "/console/api";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(path, options = {}) {
  const response = await fetch(BASE + path, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    ...options,
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.error || body.message || detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, `${response.status} ${detail}`);
  }
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : null;
}

export const getJSON = (path) => request(path);
export const post = (path) => request(path, { method: "POST" });

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ------------------------------------------------------------------ live events

const EVENT_TYPES = ["call_started", "call_updated", "call_ended", "transcript", "levels"];
const listeners = new Map(); // type → Set(handler)
let source = null;
const connection = new EventTarget();
export let connectionState = "connecting";

function setConnection(state) {
  connectionState = state;
  connection.dispatchEvent(new Event("change"));
}

export function onConnection(handler) {
  connection.addEventListener("change", handler);
  return () => connection.removeEventListener("change", handler);
}

function dispatch(type, data) {
  for (const handler of listeners.get(type) || []) {
    try {
      handler(data);
    } catch (error) {
      console.error(`console: ${type} handler failed`, error);
    }
  }
}

/** Opens the event stream once; EventSource reconnects by itself. */
export function connectEvents() {
  if (source) return;
  store.reload();
  source = new EventSource(`${BASE}/events`, { withCredentials: true });
  source.onopen = () => {
    setConnection("open");
    store.reload(); // anything missed while disconnected
  };
  source.onerror = () => setConnection(source.readyState === EventSource.CLOSED ? "error" : "connecting");
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      dispatch(type, data);
    });
  }
}

/** subscribe("transcript", fn) → unsubscribe */
export function subscribe(type, handler) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(handler);
  return () => listeners.get(type).delete(handler);
}

// ------------------------------------------------------------------ live calls

class LiveStore extends EventTarget {
  constructor() {
    super();
    this.calls = new Map(); // id → call (+ receivedAt)
    this.ended = new Map(); // id → call with end_reason (this session only)
    this.loaded = false;
    this.error = null;
    this.generation = 0;
    subscribe("call_started", (call) => this.upsert(call));
    subscribe("call_updated", (call) => this.upsert(call));
    subscribe("call_ended", (call) => this.end(call));
    subscribe("transcript", (line) => {
      const call = this.calls.get(line.id);
      if (call) {
        call.last_line = { role: line.role, text: line.line_text ?? line.text };
        this.changed(call.id);
      }
    });
  }

  changed(id) {
    this.dispatchEvent(new CustomEvent("change", { detail: { id } }));
  }

  stamp(call) {
    return { ...call, receivedAt: Date.now() };
  }

  upsert(call) {
    if (!call || !call.id || this.ended.has(call.id)) return;
    const before = this.calls.get(call.id);
    this.calls.set(call.id, { ...before, ...this.stamp(call) });
    this.changed(call.id);
  }

  end(call) {
    if (!call || !call.id) return;
    const before = this.calls.get(call.id);
    this.calls.delete(call.id);
    this.ended.set(call.id, { ...before, ...this.stamp(call) });
    this.changed(call.id);
  }

  async reload() {
    const generation = ++this.generation;
    const asked = Date.now();
    try {
      const body = await getJSON("/calls");
      if (generation !== this.generation) return;
      const fresh = new Map();
      for (const call of body.calls || []) {
        if (!this.ended.has(call.id)) fresh.set(call.id, { ...this.calls.get(call.id), ...this.stamp(call) });
      }
      // A call that started (per the event stream) while the list was in flight stays.
      for (const [id, call] of this.calls) {
        if (!fresh.has(id) && call.receivedAt >= asked) fresh.set(id, call);
      }
      this.calls = fresh;
      this.loaded = true;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.changed(null);
  }
}

export const store = new LiveStore();

/** Seconds since a live call started, ticking locally from the server's last figure. */
export function elapsed(call) {
  if (typeof call.duration_s === "number") {
    return call.duration_s + (Date.now() - call.receivedAt) / 1000;
  }
  const start = Date.parse(call.started_at);
  return Number.isFinite(start) ? (Date.now() - start) / 1000 : 0;
}
