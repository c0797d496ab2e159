"""HTTP tools: POST the model's arguments as JSON to a URL; the JSON reply goes to the model.

The request carries the call's identity in headers (`X-Gateway-Tool`, `X-Gateway-Call-Sid`,
`X-Gateway-Agent`, `X-Gateway-From`, `X-Gateway-To`) and, with a secret, an HMAC signature
(see `gateway.tools.signing`). A non-2xx status or a reply that is not JSON becomes an error
for the model; the timeout is the tool's `timeout_s`, enforced by the runner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway.tools.context import ToolContext, ToolError
from gateway.tools.python_tool import ToolInvoker
from gateway.tools.signing import signature_headers
from gateway.tools.spec import HttpToolConfig

__all__ = ["MAX_ERROR_BODY_CHARS", "http_invoker"]

MAX_ERROR_BODY_CHARS = 200
"""How much of an error reply's body the model gets to see."""


def http_invoker(tool_name: str, config: HttpToolConfig, secret: str | None) -> ToolInvoker:
    """`invoke(args, context)` that POSTs to `config.url`; `secret` signs the body if set."""

    async def invoke(args: Mapping[str, Any], context: ToolContext) -> Any:
        body = json.dumps(dict(args), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Gateway-Tool": tool_name,
            "X-Gateway-Call-Sid": context.call_sid,
            "X-Gateway-Agent": context.agent,
            "X-Gateway-From": context.from_number,
            "X-Gateway-To": context.to_number,
            **config.headers,
        }
        if secret is not None:
            headers.update(signature_headers(secret, body, config.hmac_header))
        async with (
            aiohttp.ClientSession() as session,
            session.post(config.url, data=body, headers=headers) as response,
        ):
            text = await response.text(errors="replace")
            if response.status >= 400:
                raise ToolError(f"HTTP {response.status}: {text[:MAX_ERROR_BODY_CHARS]}")
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise ToolError(
                f"the reply is not JSON: {text[:MAX_ERROR_BODY_CHARS]!r}"
            ) from None

    return invoke
