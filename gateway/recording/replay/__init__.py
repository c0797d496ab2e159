"""`gateway replay`: a recorded call played through a gateway, and what it sent compared.

* `player`  — drives the replay (the caller from the recording, Live recorded or emulated);
* `live`    — the Live end of a replayed call on loopback (playback or proxy);
* `script`  — an emulator script that makes the emulator say what the recorded model said;
* `compare` — recorded vs replayed output, explained run by run.
"""
