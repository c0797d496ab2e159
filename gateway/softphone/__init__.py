"""Ways to call an agent without a phone.

* `page`   — the browser softphone at `/softphone` (files in `static/`) and its agent list;
* `cli`    — `gateway call`: a WAV file in, the agent's reply out, over the media-stream protocol.
"""
