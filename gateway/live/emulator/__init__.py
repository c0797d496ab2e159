"""The built-in Gemini Live emulator: the real wire protocol, offline.

* `server`   — `LiveEmulator`: the loopback WebSocket server and its conversations;
* `protocol` — Live messages as the service sees them (sans-IO);
* `rules`    — what each model generation accepts and does;
* `script`   — scripted turns (YAML);
* `vad`      — energy voice-activity detection, clocked by samples;
* `voice`    — the deterministic speech-like audio of its replies.
"""
