"""Hypothesis settings and strategies for the bad-input tests (parsers and the live server).

Derandomized, so every run (and CI) tries the same examples; example counts are modest so the
whole suite stays fast on two cores.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PARSER_FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""For pure parsers: cheap examples, so a few hundred."""
SERVER_FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
"""For whole calls against a running server: each example is a call."""

TWILIO_EVENTS = ("connected", "start", "media", "dtmf", "mark", "stop", "clear", "", "MEDIA")
TWILIO_KEYS = (
    "event", "streamSid", "sequenceNumber", "media", "start", "stop", "mark", "dtmf",
    "payload", "track", "chunk", "timestamp", "callSid", "accountSid", "tracks",
    "customParameters", "mediaFormat", "encoding", "sampleRate", "channels", "name", "digit",
)  # fmt: skip
LIVE_SERVER_KEYS = (
    "setupComplete", "serverContent", "modelTurn", "parts", "inlineData", "data", "mimeType",
    "text", "thought", "inputTranscription", "outputTranscription", "interrupted",
    "generationComplete", "turnComplete", "toolCall", "functionCalls", "id", "name", "args",
    "toolCallCancellation", "ids", "goAway", "timeLeft", "seconds", "nanos",
    "sessionResumptionUpdate", "newHandle", "resumable", "usageMetadata", "server_content",
)  # fmt: skip
LIVE_CLIENT_KEYS = (
    "setup", "model", "generationConfig", "responseModalities", "speechConfig", "voiceConfig",
    "realtimeInput", "audio", "data", "mimeType", "text", "audioStreamEnd", "clientContent",
    "turns", "role", "parts", "turnComplete", "toolResponse", "functionResponses", "id", "name",
    "response", "sessionResumption", "handle", "realtimeInputConfig", "tools",
)  # fmt: skip


def json_values(keys: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    """Any JSON value; object keys are mostly protocol words, so parsers get past the surface."""
    key = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | base64_text()
    )
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(key, children, max_size=5),
        max_leaves=25,
    )


def base64_text() -> st.SearchStrategy[str]:
    """Valid, URL-safe, broken and oversized base64."""
    return st.one_of(
        st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()),
        st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
        st.text(alphabet="ABCD+/=%-_ \n", max_size=30),
        st.integers(min_value=16_001, max_value=40_000).map(lambda n: "A" * (n // 3 * 4)),
    )


def shaped(keys: tuple[str, ...], required: dict[str, st.SearchStrategy[Any]]) -> Any:
    """Objects with some required fields (e.g. a known `event`) and random others."""
    return st.builds(
        lambda fixed, extra: {**extra, **fixed},
        st.fixed_dictionaries(required),
        st.dictionaries(st.sampled_from(keys), json_values(keys), max_size=6),
    )


def frames(keys: tuple[str, ...], shaped_objects: st.SearchStrategy[Any]) -> Any:
    """What a hostile peer may put in one WebSocket message."""
    return st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        json_values(keys).map(json.dumps),
        shaped_objects.map(json.dumps),
        shaped_objects.map(lambda obj: json.dumps(obj).encode()),
        st.integers(min_value=1, max_value=200_000).map(lambda n: "[" * n + "]" * n),
    )


def twilio_frames() -> Any:
    event = st.sampled_from(TWILIO_EVENTS) | st.text(max_size=6) | json_values()
    return frames(TWILIO_KEYS, shaped(TWILIO_KEYS, {"event": event}))


def live_server_frames() -> Any:
    field = st.sampled_from((*LIVE_SERVER_KEYS[:1], "serverContent", "toolCall", "goAway"))
    return frames(
        LIVE_SERVER_KEYS,
        st.builds(lambda k, v: {k: v}, field, json_values(LIVE_SERVER_KEYS))
        | shaped(LIVE_SERVER_KEYS, {}),
    )


def live_client_frames() -> Any:
    field = st.sampled_from(("setup", "realtimeInput", "clientContent", "toolResponse"))
    return frames(
        LIVE_CLIENT_KEYS,
        st.builds(lambda k, v: {k: v}, field, json_values(LIVE_CLIENT_KEYS))
        | shaped(LIVE_CLIENT_KEYS, {}),
    )
