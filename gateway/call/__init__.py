"""One phone call, from the carrier's `start` to hang-up.

* `bridge`         — `Call`: the caller pump, the Live pump and the writer; barge-in is
                     `Call._barge_in`;
* `control`        — `CallSupervisor`: end_call, end phrases, time limits, transfers;
* `hooks`          — `CallObserver`: what recording, metrics and the post-call webhook see;
* `outcome`        — `EndReason`, `CallStats`: how a call ended and what happened on it;
* `ports`          — what a call needs from the carrier socket and from Live (protocols);
* `session_config` — agent YAML → the Live `setup` of a call.

This package's `__init__` imports nothing, so the modules below `bridge` (hooks, outcome,
ports) can be imported without pulling in the call and everything it uses.
"""
