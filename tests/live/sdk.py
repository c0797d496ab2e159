"""Validation of wire messages against the official google-genai models (test-only dependency).

The SDK's `LiveClientSetup` lacks `realtimeInputConfig`, so that part is validated with
`RealtimeInputConfig` on its own. Unknown enum values only warn in the SDK: here they fail.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

from google.genai import types


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


def validate_server_frame(frame: str | bytes) -> types.LiveServerMessage:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return types.LiveServerMessage.model_validate_json(frame)
