"""Validation of wire messages against the official google-genai models (test-only dependency).

The SDK's `LiveClientSetup` lacks `realtimeInputConfig`, so that part is validated with
`RealtimeInputConfig` on its own. Unknown enum values only warn in the SDK: here they fail.
Vertex server frames go through the SDK's own Vertex converter first (Vertex counts
`candidatesTokenCount` where the Developer API says `responseTokenCount`), as the SDK does.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

from google.genai import _live_converters, types

from gateway.live.models import Backend

_VERTEX_ONLY_USAGE = frozenset({"candidatesTokenCount", "candidatesTokensDetails", "trafficType"})
_VERTEX_USAGE = _VERTEX_ONLY_USAGE | {
    "promptTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
    "thoughtsTokenCount",
    "totalTokenCount",
    "promptTokensDetails",
    "cacheTokensDetails",
    "toolUsePromptTokensDetails",
}
_GEMINI_ONLY_USAGE = frozenset({"responseTokenCount", "responseTokensDetails", "serviceTier"})


def validate_client_message(message: dict[str, Any]) -> types.LiveClientMessage:
    message = copy.deepcopy(message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        setup = message.get("setup")
        if isinstance(setup, dict) and "realtimeInputConfig" in setup:
            types.RealtimeInputConfig.model_validate_json(
                json.dumps(setup.pop("realtimeInputConfig"))
            )
        return types.LiveClientMessage.model_validate_json(json.dumps(message))


def validate_server_frame(
    frame: str | bytes, backend: Backend | None = None
) -> types.LiveServerMessage:
    """The frame as the SDK reads it on `backend`; None: on whichever dialect it is written in
    (a frame mixing both dialects' usage names fails)."""
    message = json.loads(frame)
    usage = set(message.get("usageMetadata") or {})
    if backend is None:
        backend = Backend.VERTEX if usage & _VERTEX_ONLY_USAGE else Backend.GEMINI
    wrong = _GEMINI_ONLY_USAGE if backend is Backend.VERTEX else _VERTEX_ONLY_USAGE
    if usage & wrong:
        raise AssertionError(f"usageMetadata not in the {backend.value} dialect: {sorted(usage)}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if backend is Backend.VERTEX and "usageMetadata" in message:
            # The SDK's converter renames the Vertex counts and drops what it does not know.
            converted = _live_converters._UsageMetadata_from_vertex(message["usageMetadata"])
            dropped = usage - _VERTEX_USAGE
            if dropped:
                raise AssertionError(f"usageMetadata fields unknown to Vertex: {sorted(dropped)}")
            message = {**message, "usageMetadata": converted}
            return types.LiveServerMessage.model_validate(message)
        return types.LiveServerMessage.model_validate_json(frame)
