// Softphone signal processing, pure functions and small stateful objects, no IO:
// G.711 μ-law (bit-exact with gateway/audio/mulaw.py), a streaming band-limited resampler
// (browser rate ⇄ 8 kHz), 20 ms framing and base64.

export const MULAW_RATE_HZ = 8000;
export const FRAME_SAMPLES = 160; // 20 ms at 8 kHz: one media-stream frame
export const MULAW_SILENCE = 0xff;

const BIAS_14BIT = 33; // G.711 bias (0x84) in 14-bit units
const CLIP_14BIT = 8159;

/** One int16 sample → one μ-law byte (the ITU 14-bit algorithm, as gateway/audio/mulaw.py). */
export function encodeMulawSample(sample) {
  let pcm14 = sample >> 2; // arithmetic shift, like the Python table
  let mask = 0xff;
  if (pcm14 < 0) {
    pcm14 = -pcm14;
    mask = 0x7f;
  }
  const magnitude = Math.min(pcm14, CLIP_14BIT) + BIAS_14BIT;
  if (magnitude > 0x1fff) return 0x7f ^ mask;
  let segment = 0;
  for (const end of [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff]) {
    if (magnitude > end) segment += 1;
  }
  const code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0f);
  return (code ^ mask) & 0xff;
}

const DECODE_TABLE = (() => {
  const table = new Int16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    const code = ~byte & 0xff;
    const mantissa = code & 0x0f;
    const segment = (code & 0x70) >> 4;
    const magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84;
    table[byte] = code & 0x80 ? -magnitude : magnitude;
  }
  return table;
})();

/** Float samples (−1…1) → μ-law bytes. */
export function encodeMulaw(floats) {
  const out = new Uint8Array(floats.length);
  for (let i = 0; i < floats.length; i++) {
    const clamped = Math.max(-1, Math.min(1, floats[i]));
    out[i] = encodeMulawSample(Math.round(clamped * 32767));
  }
  return out;
}

/** μ-law bytes → int16 samples. */
export function decodeMulawInt16(bytes) {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE_TABLE[bytes[i]];
  return out;
}

/** μ-law bytes → float samples (−1…1). */
export function decodeMulaw(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE_TABLE[bytes[i]] / 32768;
  return out;
}

/**
 * Streaming resampler between any two rates: a Blackman-windowed sinc low-pass evaluated at
 * each output instant, so the same object serves 48 kHz → 8 kHz (capture) and 8 kHz → 48 kHz
 * (playback). The cut-off sits below both Nyquist rates (3.6 kHz for telephony), and the
 * output does not depend on how the input is chunked.
 */
export class Resampler {
  constructor(inRateHz, outRateHz, { cutoffHz = null, zeroCrossings = 16 } = {}) {
    this.inRateHz = inRateHz;
    this.outRateHz = outRateHz;
    const nyquist = Math.min(inRateHz, outRateHz) / 2;
    this.cutoffHz = cutoffHz ?? nyquist * 0.9;
    this.step = inRateHz / outRateHz; // input samples per output sample
    this.halfWidth = (zeroCrossings / (2 * this.cutoffHz)) * inRateHz; // in input samples
    this.reset();
  }

  reset() {
    const history = Math.ceil(this.halfWidth);
    this.buffer = new Float32Array(history); // leading silence, so output starts at time 0
    this.bufferStart = -history; // absolute input index of buffer[0]
    this.outputIndex = 0;
    this.phases = new Map(); // fractional position → { offset, weights }
  }

  kernel(distance) {
    // distance in input samples; a Blackman-windowed sinc with its cut-off at cutoffHz.
    const half = this.halfWidth;
    if (distance <= -half || distance >= half) return 0;
    const x = (2 * this.cutoffHz * distance) / this.inRateHz;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const a = (Math.PI * distance) / half;
    return sinc * (0.42 + 0.5 * Math.cos(a) + 0.08 * Math.cos(2 * a));
  }

  /** Normalised taps for an output instant `frac` input samples past an input sample. */
  phase(frac) {
    const key = Math.round(frac * 1e6);
    let entry = this.phases.get(key);
    if (entry === undefined) {
      const offset = Math.ceil(frac - this.halfWidth);
      const weights = [];
      let sum = 0;
      for (let k = offset; frac - k > -this.halfWidth; k++) {
        const w = this.kernel(frac - k);
        weights.push(w);
        sum += w;
      }
      entry = { offset, weights: Float64Array.from(weights, (w) => w / sum) };
      if (this.phases.size < 4096) this.phases.set(key, entry);
    }
    return entry;
  }

  /** Float samples at inRateHz → the float samples at outRateHz they complete. */
  process(input) {
    const joined = new Float32Array(this.buffer.length + input.length);
    joined.set(this.buffer);
    joined.set(input, this.buffer.length);
    const start = this.bufferStart;
    const end = start + joined.length; // absolute index one past the last sample
    const out = [];
    for (;;) {
      const center = this.outputIndex * this.step;
      const base = Math.floor(center);
      const { offset, weights } = this.phase(center - base);
      const first = base + offset;
      if (first + weights.length > end) break;
      let acc = 0;
      for (let j = 0, index = first - start; j < weights.length; j++, index++) {
        acc += joined[index] * weights[j];
      }
      out.push(acc);
      this.outputIndex += 1;
    }
    const nextCenter = this.outputIndex * this.step;
    const keepFrom = Math.max(start, Math.ceil(nextCenter - this.halfWidth) - 1);
    this.buffer = joined.slice(keepFrom - start);
    this.bufferStart = keepFrom;
    return Float32Array.from(out);
  }
}

/** Cuts a sample stream into whole frames of `size`, keeping the remainder. */
export class Framer {
  constructor(size = FRAME_SAMPLES) {
    this.size = size;
    this.pending = new Float32Array(0);
  }

  push(samples) {
    const joined = new Float32Array(this.pending.length + samples.length);
    joined.set(this.pending);
    joined.set(samples, this.pending.length);
    const frames = [];
    let offset = 0;
    while (joined.length - offset >= this.size) {
      frames.push(joined.slice(offset, offset + this.size));
      offset += this.size;
    }
    this.pending = joined.slice(offset);
    return frames;
  }
}

export function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

export function base64ToBytes(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** RMS level of float samples in dBFS (−Infinity for silence). */
export function levelDbfs(floats) {
  if (floats.length === 0) return -Infinity;
  let sum = 0;
  for (let i = 0; i < floats.length; i++) sum += floats[i] * floats[i];
  return 10 * Math.log10(sum / floats.length);
}
