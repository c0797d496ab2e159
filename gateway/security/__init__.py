"""What a caller or a stranger on the network can abuse, and the guards against it.

* `stream_guard` — who may open a stream and how hard: Twilio signatures, the Account SID
                   allow-list, call limits, a frame-rate limit and the real-time audio budget;
* `call_binding` — a stream proves which call it is (an HMAC from `/twiml`), never just says so;
* `http_guard`   — slow clients cannot tie up the HTTP server (request deadline, per-IP limit).
"""
