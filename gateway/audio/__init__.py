"""Audio: μ-law and resampling, numpy only at run time.

* `mulaw`          — G.711 μ-law ↔ PCM16 through tables (bit-exact with `audioop`);
* `codec`          — per-call pipelines: caller μ-law → Live PCM16, agent PCM16 → μ-law frames;
* `resample`       — the streaming polyphase FIR resampler (integer ratios, chunking-independent);
* `filter_taps`    — its low-pass taps as constants (generated; do not edit);
* `design_filters` — design time only: designs the taps with scipy and writes `filter_taps`;
* `polyphase`      — whole-signal resampling between any rates (`gateway call`'s input WAVs).
"""
