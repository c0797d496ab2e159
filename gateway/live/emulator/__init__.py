"""The built-in Gemini Live emulator: the real wire protocol, offline.

* `server`   — `LiveEmulator`: the loopback WebSocket server and its conversations;
* `protocol` — Live messages as the service sees them (sans-IO);
* `rules`    — what each model generation accepts and does;
* `script`   — scripted turns (YAML);
* `vad`      — energy voice-activity detection, clocked by samples;
* `voice`    — what its replies sound like: eSpeak NG speech per Live voice, tones as fallback;
* `espeak`   — eSpeak NG through ctypes (library and data from the `espeakng-loader` wheel).
"""
