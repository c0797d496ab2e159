// The browser softphone: calls an agent over the gateway's media-stream WebSocket exactly as a
// phone line does (Twilio's protocol, 8 kHz μ-law, 20 ms frames) and plays the answer.
//
// The caller meter shows the microphone's level (each 20 ms block), the agent meter the level of
// what is being played (the player reports it every ~50 ms), both RMS in dBFS.
//
// window.softphone exposes the state for people and tests: `stats` (counters), `transcript`
// (lines), `call(agent)`, `hangUp()` and `waitFor(predicate)`, which resolves on the first
// state change where predicate(stats, transcript) holds.

import {
  FRAME_SAMPLES,
  Framer,
  MULAW_RATE_HZ,
  Resampler,
  base64ToBytes,
  bytesToBase64,
  decodeMulaw,
  encodeMulaw,
  levelDbfs,
} from "./softphone-audio.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const stats = {
  state: "idle", // idle | connecting | in-call | ended | failed
  error: "",
  framesSent: 0,
  framesReceived: 0,
  secondsPlayed: 0,
  secondsQueued: 0,
  marksReceived: 0,
  marksEchoed: 0,
  marksCleared: 0,
  clears: 0,
  transcriptEvents: 0,
  micLevelDbfs: -Infinity,
  agentLevelDbfs: -Infinity,
  micPeakDbfs: -Infinity, // the loudest each has been this call
  agentPeakDbfs: -Infinity,
  sampleRateHz: 0,
  agentsLoaded: 0,
};
const transcript = []; // { role, text, open }
const changes = new EventTarget();
let call = null;

function changed() {
  for (const [key, value] of Object.entries(stats)) {
    const cell = document.querySelector(`[data-stat="${key}"]`);
    if (cell) cell.textContent = typeof value === "number" ? formatNumber(key, value) : value;
  }
  document.getElementById("state").dataset.state = stats.state;
  showLevel($("meter-caller"), stats.micLevelDbfs);
  showLevel($("meter-agent"), stats.agentLevelDbfs);
  $("call").disabled = stats.state === "connecting" || stats.state === "in-call";
  $("hangup").disabled = !(stats.state === "connecting" || stats.state === "in-call");
  changes.dispatchEvent(new Event("change"));
}

const METER_FLOOR_DB = -60;

function showLevel(meter, db) {
  const level = Number.isFinite(db) ? Math.max(METER_FLOOR_DB, Math.min(0, db)) : METER_FLOOR_DB;
  const now = String(Math.round(level));
  if (meter.getAttribute("aria-valuenow") === now) return;
  meter.setAttribute("aria-valuenow", now);
  meter.setAttribute("aria-valuetext", level <= METER_FLOOR_DB ? "silent" : `${now} dBFS`);
  meter.firstElementChild.style.width = `${((level - METER_FLOOR_DB) / -METER_FLOOR_DB) * 100}%`;
}

function formatNumber(key, value) {
  if (key === "micLevelDbfs" || key === "agentLevelDbfs" || key.endsWith("PeakDbfs")) {
    return value > METER_FLOOR_DB ? value.toFixed(0) : "–";
  }
  if (key === "secondsPlayed" || key === "secondsQueued") return value.toFixed(2);
  return String(value);
}

function waitFor(predicate) {
  return new Promise((resolve) => {
    const check = () => {
      if (predicate(stats, transcript)) {
        changes.removeEventListener("change", check);
        resolve({ ...stats });
      }
    };
    changes.addEventListener("change", check);
    check();
  });
}

// ------------------------------------------------------------------ transcript

function addTranscript(role, text) {
  stats.transcriptEvents += 1;
  let line = transcript[transcript.length - 1];
  if (!line || line.role !== role || !line.open) {
    line = { role, text: "", open: true, element: document.createElement("p") };
    line.element.className = `line ${role}`;
    line.element.innerHTML = `<b>${role}</b> <span></span>`;
    $("transcript").append(line.element);
    transcript.push(line);
  }
  line.text += text;
  line.element.querySelector("span").textContent = line.text;
  line.element.scrollIntoView({ block: "end" });
}

function closeTranscriptLine() {
  const line = transcript[transcript.length - 1];
  if (line) line.open = false;
}

// ------------------------------------------------------------------ the call

class Call {
  constructor(agent) {
    this.agent = agent;
    this.streamSid = "MZ" + randomHex(32);
    this.callSid = "CA" + randomHex(32);
    this.sequence = 0;
    this.chunk = 0;
    this.hungUp = false;
  }

  async start() {
    stats.state = "connecting";
    changed();
    const context = new AudioContext({ latencyHint: "interactive" });
    this.context = context;
    await context.resume();
    stats.sampleRateHz = context.sampleRate;
    await context.audioWorklet.addModule(new URL("softphone-worklet.js", import.meta.url));
    const processing = params.get("aec") !== "0";
    this.microphone = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: processing,
        noiseSuppression: processing,
        autoGainControl: processing,
      },
    });
    if (this.hungUp) return this.release();

    this.downsampler = new Resampler(context.sampleRate, MULAW_RATE_HZ);
    this.framer = new Framer(FRAME_SAMPLES);
    this.upsampler = new Resampler(MULAW_RATE_HZ, context.sampleRate);

    this.player = new AudioWorkletNode(context, "softphone-player", { outputChannelCount: [1] });
    this.player.port.onmessage = (event) => this.onPlayer(event.data);
    this.player.connect(context.destination);

    this.capture = new AudioWorkletNode(context, "softphone-capture", { outputChannelCount: [1] });
    this.capture.port.onmessage = (event) => this.onMicrophone(event.data);
    context.createMediaStreamSource(this.microphone).connect(this.capture);
    this.capture.connect(context.destination); // writes silence; keeps the node pulled

    const url = params.get("media") || mediaUrl();
    this.ws = new WebSocket(url);
    this.ws.onopen = () => this.onOpen();
    this.ws.onmessage = (event) => this.onFrame(event.data);
    this.ws.onclose = (event) => this.onClose(event);
    this.ws.onerror = () => fail(`cannot reach ${url}`);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  nextSequence() {
    this.sequence += 1;
    return String(this.sequence);
  }

  onOpen() {
    this.send({ event: "connected", protocol: "Call", version: "1.0.0" });
    this.send({
      event: "start",
      sequenceNumber: this.nextSequence(),
      streamSid: this.streamSid,
      start: {
        accountSid: "ACsoftphone",
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ["inbound"],
        customParameters: { agent: this.agent, transcript: "1", from: "softphone" },
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: MULAW_RATE_HZ, channels: 1 },
      },
    });
    this.streaming = true;
    stats.state = "in-call";
    changed();
  }

  onMicrophone(block) {
    if (!this.streaming) return;
    const level = levelDbfs(block);
    for (const frame of this.framer.push(this.downsampler.process(block))) {
      this.chunk += 1;
      this.send({
        event: "media",
        sequenceNumber: this.nextSequence(),
        streamSid: this.streamSid,
        media: {
          track: "inbound",
          chunk: String(this.chunk),
          timestamp: String((this.chunk - 1) * 20),
          payload: bytesToBase64(encodeMulaw(frame)),
        },
      });
      stats.framesSent += 1;
    }
    stats.micLevelDbfs = level;
    stats.micPeakDbfs = Math.max(stats.micPeakDbfs, level);
    changed();
  }

  onFrame(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.event === "media") {
      const samples = this.upsampler.process(decodeMulaw(base64ToBytes(message.media.payload)));
      this.player.port.postMessage({ type: "audio", samples }, [samples.buffer]);
      stats.framesReceived += 1;
    } else if (message.event === "mark") {
      stats.marksReceived += 1;
      this.player.port.postMessage({ type: "mark", name: message.mark.name });
      closeTranscriptLine();
    } else if (message.event === "clear") {
      stats.clears += 1;
      this.upsampler.reset();
      this.player.port.postMessage({ type: "clear" });
      closeTranscriptLine();
    } else if (message.event === "transcript") {
      addTranscript(message.role === "caller" ? "caller" : "agent", String(message.text));
    }
    changed();
  }

  onPlayer(message) {
    if (message.type === "mark") {
      // Like Twilio: the mark comes back once the audio before it has played (or was cleared).
      this.send({
        event: "mark",
        sequenceNumber: this.nextSequence(),
        streamSid: this.streamSid,
        mark: { name: message.name },
      });
      stats.marksEchoed += 1;
      if (message.cleared) stats.marksCleared += 1;
    } else if (message.type === "progress") {
      stats.secondsPlayed = message.played / this.context.sampleRate;
      stats.secondsQueued = message.queued / this.context.sampleRate;
      stats.agentLevelDbfs = message.level;
      stats.agentPeakDbfs = Math.max(stats.agentPeakDbfs, message.level);
    }
    changed();
  }

  onClose(event) {
    this.streaming = false;
    if (stats.state !== "failed") stats.state = "ended";
    if (!this.hungUp && event.code !== 1000) stats.error = `stream closed (${event.code})`;
    this.release();
    changed();
  }

  hangUp() {
    this.hungUp = true;
    if (this.streaming) {
      this.send({
        event: "stop",
        sequenceNumber: this.nextSequence(),
        streamSid: this.streamSid,
        stop: { accountSid: "ACsoftphone", callSid: this.callSid },
      });
    }
    this.streaming = false;
    if (this.ws) this.ws.close(1000);
    stats.state = "ended";
    stats.micLevelDbfs = stats.agentLevelDbfs = -Infinity;
    this.release();
    changed();
  }

  release() {
    if (this.microphone) this.microphone.getTracks().forEach((track) => track.stop());
    if (this.context && this.context.state !== "closed") this.context.close();
  }
}

function mediaUrl() {
  const url = new URL("media", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  return url.toString();
}

function randomHex(length) {
  const bytes = crypto.getRandomValues(new Uint8Array(length / 2));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fail(message) {
  stats.state = "failed";
  stats.error = message;
  changed();
}

async function startCall(agent) {
  if (call && (stats.state === "connecting" || stats.state === "in-call")) return;
  for (const line of transcript.splice(0)) line.element.remove();
  Object.assign(stats, {
    error: "", framesSent: 0, framesReceived: 0, secondsPlayed: 0, secondsQueued: 0,
    marksReceived: 0,
    marksEchoed: 0, marksCleared: 0, clears: 0, transcriptEvents: 0,
    micLevelDbfs: -Infinity, agentLevelDbfs: -Infinity, micPeakDbfs: -Infinity,
    agentPeakDbfs: -Infinity,
  });
  call = new Call(agent || $("agent").value);
  try {
    await call.start();
  } catch (error) {
    call.release();
    fail(String(error && error.message ? error.message : error));
  }
}

function hangUp() {
  if (call) call.hangUp();
}

async function loadAgents() {
  const select = $("agent");
  try {
    const response = await fetch(new URL("softphone/agents", location.href));
    const listing = await response.json();
    for (const agent of listing.agents) {
      const option = document.createElement("option");
      option.value = agent.name;
      const lines = agent.lines.length ? ` (${agent.lines.join(", ")})` : "";
      option.textContent = agent.name + lines;
      select.append(option);
    }
    select.value = params.get("agent") || listing.default;
  } catch (error) {
    fail(`cannot load agents: ${error}`);
  }
  stats.agentsLoaded = select.options.length;
  changed();
}

$("call").addEventListener("click", () => startCall());
$("hangup").addEventListener("click", () => hangUp());
window.softphone = { stats, transcript, waitFor, call: startCall, hangUp };
changed();
loadAgents();
