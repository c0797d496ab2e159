// Audio-thread halves of the softphone: capture (microphone → main thread in ~20 ms blocks)
// and playback (a queue of agent audio with Twilio-style marks and clear).

const CAPTURE_BLOCK_MS = 20;
const PROGRESS_EVERY_QUANTA = 20; // ~50 ms at 48 kHz

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.blockSamples = Math.round((sampleRate * CAPTURE_BLOCK_MS) / 1000);
    this.block = new Float32Array(this.blockSamples);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    let offset = 0;
    while (offset < channel.length) {
      const take = Math.min(channel.length - offset, this.blockSamples - this.filled);
      this.block.set(channel.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.blockSamples) {
        this.port.postMessage(this.block, [this.block.buffer]);
        this.block = new Float32Array(this.blockSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

/**
 * Plays queued agent audio, reporting progress and the level of what it played (RMS dBFS over
 * the report period, silence included) for the agent meter. A mark is echoed (posted back) once every sample queued before it
 * has been played; `clear` drops the queue and echoes every pending mark at once, as Twilio does.
 */
class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.readOffset = 0;
    this.queuedEnd = 0; // samples ever queued (after clears: the played position)
    this.played = 0; // samples ever played
    this.marks = []; // { name, at } in queue order
    this.quanta = 0;
    this.reported = 0;
    this.reportedLevel = -Infinity;
    this.energy = 0; // sum of squares played since the last report
    this.energySamples = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "audio") {
      this.queue.push(message.samples);
      this.queuedEnd += message.samples.length;
    } else if (message.type === "mark") {
      this.marks.push({ name: message.name, at: this.queuedEnd });
      this.echoPlayedMarks();
    } else if (message.type === "clear") {
      const pending = this.marks;
      this.marks = [];
      this.queue = [];
      this.readOffset = 0;
      this.queuedEnd = this.played;
      this.report(true); // the queue is empty now
      for (const mark of pending) this.port.postMessage({ type: "mark", name: mark.name, cleared: true });
    }
  }

  echoPlayedMarks() {
    if (this.marks.length && this.marks[0].at <= this.played) this.report();
    while (this.marks.length && this.marks[0].at <= this.played) {
      const mark = this.marks.shift();
      this.port.postMessage({ type: "mark", name: mark.name, cleared: false });
    }
  }

  report(force = false) {
    const level = this.energySamples ? 10 * Math.log10(this.energy / this.energySamples) : -Infinity;
    this.energy = 0;
    this.energySamples = 0;
    // After playing stops, one more report brings the meter down to silence.
    if (force || this.played !== this.reported || level !== this.reportedLevel) {
      this.reported = this.played;
      this.reportedLevel = level;
      this.port.postMessage({
        type: "progress", played: this.played, queued: this.queuedEnd - this.played, level,
      });
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (written < out.length && this.queue.length) {
      const head = this.queue[0];
      const take = Math.min(out.length - written, head.length - this.readOffset);
      out.set(head.subarray(this.readOffset, this.readOffset + take), written);
      written += take;
      this.readOffset += take;
      if (this.readOffset === head.length) {
        this.queue.shift();
        this.readOffset = 0;
      }
    }
    out.fill(0, written);
    for (let i = 0; i < written; i++) this.energy += out[i] * out[i];
    this.energySamples += out.length;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.played += written;
    this.echoPlayedMarks();
    this.quanta += 1;
    if (this.quanta % PROGRESS_EVERY_QUANTA === 0) this.report();
    return true;
  }
}

registerProcessor("softphone-capture", CaptureProcessor);
registerProcessor("softphone-player", PlayerProcessor);
