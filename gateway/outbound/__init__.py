"""Outbound calls: the gateway phones people (`POST /calls`), one call or a paced campaign.

* `states`    — `CallState` and how a carrier's call status / answering-machine verdict maps to it;
* `registry`  — `OutboundRegistry`: this process's outbound calls (bounded, in memory);
* `agents`    — what an outbound call needs from an agent (voicemail policy, variables);
* `streams`   — the registry seen from a media stream: the outbound agent, the stream's end;
* `placer`    — placing and hanging up through a carrier's REST API (Twilio);
* `notify`    — on a call's end: metrics, the post-call webhook, the request's callback_url;
* `api`       — the `/calls` routes (bearer token), the Twilio status callback and voice answer;
* `openapi`   — the OpenAPI 3.1 document of `/calls` (`GET /calls/openapi.json`).

This package's `__init__` imports nothing, and the server imports these modules only when
API_TOKEN is set (outbound is off otherwise), so an idle gateway never loads them.
"""
