"""Calls recorded and replayed.

* `recorder`   — `CallRecorder`: a call observer writing every event to `RECORDINGS_DIR`;
* `format`     — the JSONL format, shared by the recorder and the replayer (pure);
* `audio`      — the stereo WAV as the caller heard it;
* `transcript` — the readable `.txt` transcript;
* `upload`     — RECORDINGS_URL: finished recordings uploaded from the spool, with retries;
* `replay`     — `gateway replay`: a recording played back through a gateway and compared.
"""
