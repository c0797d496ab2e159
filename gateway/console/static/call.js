// One recorded call: the stereo waveform with its events marked, the transcript aligned to it
// (click a line to hear it), playback whose playhead follows on the waveform and highlights
// the line being spoken, the event log, downloads and the `gateway replay` command.

import { getJSON } from "./api.js";
import { errorBanner, setTitle } from "./app.js";
import { clock, dateTime, el, humanize, offsetSeconds } from "./dom.js";
import { MARKED_KINDS, waveform } from "./waveform.js";

const DOWNLOADS = [
  ["jsonl", "Recording (JSONL)"], ["wav", "Audio (stereo WAV)"], ["txt", "Transcript (text)"],
  ["audio", "Audio (raw frames)"],
];

export async function mount(view, [id]) {
  const path = `/history/${encodeURIComponent(id)}`;
  let data;
  try {
    data = await getJSON(path);
  } catch (error) {
    view.append(crumbs(id), errorBanner(error.status === 404 ? "No such recorded call" : "Cannot load this call", error));
    return undefined;
  }
  const call = data.call || {};
  const meta = data.meta || {};
  const startedAt = call.started_at || meta.started_at;
  const seconds = (t) => offsetSeconds(t, startedAt);
  const transcript = (data.transcript || []).map((line) => ({ ...line, seconds: seconds(line.t) }));
  const events = (data.events || []).map((event) => ({ ...event, seconds: seconds(event.t) }));
  const wave = data.waveform || {};
  // The time line spans the call and all of its audio (they differ when audio ran faster than
  // the wall clock, as against the emulator).
  const envelopeSeconds = Math.max((wave.caller || []).length, (wave.agent || []).length) / (wave.rate_hz || 50);
  const duration = Math.max(data.duration_s || call.duration_s || 0, envelopeSeconds);

  const title = `${call.from || "unknown"} → ${call.to || "unknown"}`;
  setTitle(title);

  // No audio_url: the call was recorded without audio (RECORD_CALLS=transcript, or old files).
  const audioUrl = "audio_url" in data ? data.audio_url : `/console/api/history/${encodeURIComponent(id)}/audio.wav`;
  const audio = audioUrl ? el("audio", {
    controls: true, preload: "auto", id: "call-audio", src: audioUrl,
    "aria-label": "Call recording (caller left, agent right)",
  }) : null;
  const noAudio = audioUrl ? null : el("p", { class: "muted", id: "no-audio" }, "No audio was recorded for this call.");
  const seek = (t) => {
    if (audio) audio.currentTime = Math.max(0, t);
    chart.setTime(t);
    highlight(t);
  };
  const chart = waveform({
    caller: wave.caller || [], agent: wave.agent || [], rateHz: wave.rate_hz || 50,
    duration, events, onSeek: seek,
  });

  const lineButtons = transcript.map((line) => el("button", {
    type: "button", class: `tline ${line.role}`, "data-t": line.seconds.toFixed(2),
    "aria-label": `${humanize(line.role)} at ${clock(line.seconds)}: ${line.text}`,
    onclick: () => seek(line.seconds),
  }, el("span", { class: "t" }, clock(line.seconds)), el("span", { class: "role" }, humanize(line.role)),
  el("span", { class: "text" }, line.text)));
  const transcriptBox = el("div", { class: "transcript", id: "call-transcript" }, lineButtons);
  let lit = -1;
  function highlight(t) {
    let index = -1;
    for (let i = 0; i < transcript.length; i++) if (transcript[i].seconds <= t + 0.05) index = i;
    if (index === lit) return;
    if (lit >= 0) lineButtons[lit].removeAttribute("aria-current");
    lit = index;
    if (lit >= 0) {
      lineButtons[lit].setAttribute("aria-current", "true");
      const box = transcriptBox;
      const button = lineButtons[lit];
      if (button.offsetTop < box.scrollTop || button.offsetTop + button.offsetHeight > box.scrollTop + box.clientHeight) {
        box.scrollTop = button.offsetTop - box.clientHeight / 3;
      }
    }
  }

  let frame = 0;
  const follow = () => {
    chart.setTime(audio.currentTime);
    highlight(audio.currentTime);
    frame = audio.paused ? 0 : requestAnimationFrame(follow);
  };
  if (audio) {
    audio.addEventListener("play", () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(follow);
    });
    audio.addEventListener("timeupdate", () => {
      if (!frame) follow();
    });
    audio.addEventListener("seeked", () => follow());
  }

  const eventRows = events.map((event) => el("tr", { "data-kind": event.kind },
    el("td", { class: "num" }, el("button", { type: "button", class: "btn-small", onclick: () => seek(event.seconds), "aria-label": `Play from ${clock(event.seconds)}` }, clock(event.seconds))),
    el("td", {}, el("span", { class: `badge plain${MARKED_KINDS.includes(event.kind) && event.kind !== "tool_call" ? " bad" : ""}` }, humanize(event.kind))),
    el("td", { class: "mono" }, typeof event.detail === "string" ? event.detail : event.detail ? JSON.stringify(event.detail) : "")));

  const downloads = data.downloads || {};
  const command = data.replay_command || "";
  const copyStatus = el("span", { class: "status-line", role: "status", id: "copy-status" });
  const copy = el("button", { type: "button", id: "copy-replay", onclick: () => copyText(command, copyStatus) }, "Copy");

  const facts = [
    ["Agent", call.agent], ["Carrier", call.carrier], ["From", call.from], ["To", call.to],
    ["Started", dateTime(startedAt)], ["Duration", clock(duration)], ["End reason", humanize(call.end_reason)],
    ["Call SID", call.call_sid], ...Object.entries(meta).filter(([k, v]) => typeof v !== "object" && !["started_at"].includes(k))
      .slice(0, 8).map(([k, v]) => [humanize(k), String(v)]),
  ];

  view.append(
    crumbs(id),
    el("div", { class: "page-head" }, el("h1", {}, title),
      el("span", { class: `badge plain${/failed|error|flood|unsupported/.test(call.end_reason || "") ? " bad" : ""}` },
        humanize(call.end_reason || "ended")),
      el("span", { class: "sub" }, `${call.agent || "–"} · ${call.carrier || "–"} · ${dateTime(startedAt)} · ${clock(duration)}`)),
    el("section", { class: "card", "aria-labelledby": "wave-h" },
      el("h2", { id: "wave-h" }, "Recording"), chart.element, audio || noAudio),
    el("div", { class: "grid two", style: "margin-top:1rem" },
      el("section", { class: "card", "aria-labelledby": "tr-h" },
        el("h2", { id: "tr-h" }, "Transcript"),
        transcript.length ? transcriptBox : el("p", { class: "muted" }, "No transcript was recorded.")),
      el("div", {},
        el("section", { class: "card", "aria-labelledby": "facts-h" }, el("h2", { id: "facts-h" }, "Call"),
          el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "–")]))),
        el("section", { class: "card", "aria-labelledby": "dl-h" }, el("h2", { id: "dl-h" }, "Downloads"),
          el("div", { class: "downloads" }, DOWNLOADS.filter(([key]) => downloads[key]).map(([key, label]) =>
            el("a", { class: "btn", href: downloads[key], download: "", "data-download": key }, label)))),
        el("section", { class: "card", "aria-labelledby": "replay-h" }, el("h2", { id: "replay-h" }, "Replay"),
          el("p", { class: "muted", style: "margin-top:0" }, "Run this call's caller side against the gateway again:"),
          el("div", { class: "copy-row" }, el("code", { id: "replay-command" }, command), copy), copyStatus))),
    el("section", { class: "card", "aria-labelledby": "ev-h", style: "margin-top:1rem" },
      el("h2", { id: "ev-h" }, `Events (${events.length})`),
      events.length ? el("table", { class: "data", id: "event-log" },
        el("thead", {}, el("tr", {}, ["Time", "Kind", "Detail"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, eventRows)) : el("p", { class: "muted" }, "No events.")),
  );
  return () => {
    cancelAnimationFrame(frame);
    if (audio) {
      audio.pause();
      audio.removeAttribute("src");
      audio.load();
    }
  };
}

function crumbs(id) {
  return el("div", { class: "crumbs" }, el("a", { href: "/console/history" }, "History"), " / ", el("span", { class: "mono" }, id));
}

async function copyText(text, status) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { style: "position:fixed;opacity:0" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) {
      status.textContent = "Copy failed: select the command and copy it.";
      return;
    }
  }
  status.textContent = "Copied.";
}
