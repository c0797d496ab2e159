"""One JSON POST to a carrier's REST API, as the placers make them: a deadline, a bounded
answer, and every failure as the carrier's `CarrierRestError` naming the carrier.

Telnyx, Plivo and Vonage create calls this way (Twilio and SignalWire go through the `twilio`
library); each brings its own reading of an error body (`detail`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp

from gateway.telephony.carrier import CarrierRestError

__all__ = ["MAX_ANSWER_BYTES", "post_json"]

MAX_ANSWER_BYTES: Final = 64 * 1024
"""A create-call answer is a few hundred bytes; more is read no further."""


async def post_json(
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    carrier: str,
    timeout_s: float,
    detail: Callable[[bytes], str],
    error: type[CarrierRestError] = CarrierRestError,
) -> object:
    """POST `body` as JSON; the answer's JSON (None if it is not JSON). Raises `error` when
    the carrier answers ≥ 400 (with `detail(body)`), is unreachable, or misses the deadline."""
    try:
        async with asyncio.timeout(timeout_s), aiohttp.ClientSession() as http:
            async with http.post(url, json=dict(body), headers=dict(headers)) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES)
                if response.status >= 400:
                    raise error(
                        f"{carrier} answered {response.status} to the call create: {detail(raw)}"
                    )
    except TimeoutError:
        raise error(f"no answer from {carrier} within {timeout_s:g} s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise error(f"cannot reach {carrier}: {exc!r}") from None
    try:
        answer: object = json.loads(raw)
    except ValueError:
        return None
    return answer
