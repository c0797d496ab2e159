"""HTTP tools: POST the model's arguments as JSON to a URL; the JSON reply goes to the model.

The request carries the call's identity in headers (`X-Gateway-Tool`, `X-Gateway-Call-Sid`,
`X-Gateway-Agent`, `X-Gateway-From`, `X-Gateway-To`) and, with a secret, an HMAC signature
(see `gateway.tools.signing`). The timeout is the tool's `timeout_s`, enforced by the runner.

What the model hears (the answer contract is in `gateway.tools.runner`):

* a 2xx JSON reply is the `result` (an empty reply or `null` means no results);
* a reply object that follows the contract itself — a `status` among `ToolStatus.ALL` — is
  taken at its word: "ok" and "no_results" give its `result` (else its other fields) with its
  `message`; any other status is that failure, with its `message` (or `error`) and
  `retryable` (on any HTTP status: a 404 `{"status": "not_found", "message": "…"}` works);
* the service cannot be reached (refused, reset, DNS) or answers 5xx, 408, 425 or 429:
  "unavailable", retryable;
* any other 4xx: "error", not retryable; a reply that is not JSON: "error".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway.tools.context import ToolContext, ToolError, ToolResult, ToolStatus
from gateway.tools.python_tool import ToolInvoker
from gateway.tools.signing import signature_headers
from gateway.tools.spec import HttpToolConfig

__all__ = ["MAX_ERROR_BODY_CHARS", "http_invoker", "own_answer"]

MAX_ERROR_BODY_CHARS = 200
"""How much of an error reply's body the model gets to see."""

RETRYABLE_HTTP_STATUSES = frozenset({408, 425, 429})
"""Besides 5xx: statuses that say "try again later"."""

_CONTRACT_KEYS = ("status", "retryable", "message")
_SUCCESSES = (ToolStatus.OK, ToolStatus.NO_RESULTS)


def own_answer(
    tool_name: str, reply: Any, *, retryable: bool | None = None
) -> ToolResult | ToolError | None:
    """The reply's own answer when it follows the contract (a known `status`), else None.

    `retryable` is the default when the reply does not say (None: by status).
    """
    if not isinstance(reply, dict):
        return None
    status = reply.get("status")
    if not isinstance(status, str) or status not in ToolStatus.ALL:
        return None
    if status == ToolStatus.CANCELLED:
        return None
    message = _text(reply.get("message"))
    if status in _SUCCESSES:
        if "result" in reply:
            result = reply["result"]
        else:
            result = {k: v for k, v in reply.items() if k not in _CONTRACT_KEYS} or None
        return ToolResult(result, message=message, status=status)
    error = message or _text(reply.get("error")) or f"{tool_name} answered {status}."
    said = reply.get("retryable")
    return ToolError(error, status=status, retryable=said if isinstance(said, bool) else retryable)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def http_invoker(tool_name: str, config: HttpToolConfig, secret: str | None) -> ToolInvoker:
    """`invoke(args, context)` that POSTs to `config.url`; `secret` signs the body if set."""
    service = f"The service behind {tool_name}"

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
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(config.url, data=body, headers=headers) as response,
            ):
                status = response.status
                text = await response.text(errors="replace")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            context.log.warning("http_tool_unreachable", tool=tool_name, error=repr(exc))
            raise ToolError(
                f"{service} cannot be reached right now; you may try once more.",
                status=ToolStatus.UNAVAILABLE,
                retryable=True,
            ) from None
        snippet = text.strip()[:MAX_ERROR_BODY_CHARS]
        if status >= 400:
            retryable = status >= 500 or status in RETRYABLE_HTTP_STATUSES
            answer = own_answer(tool_name, _json_or_none(text), retryable=retryable)
            if isinstance(answer, ToolError):
                raise answer
            detail = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
            if retryable:
                raise ToolError(
                    f"{service} is unavailable right now ({detail}); you may try once more.",
                    status=ToolStatus.UNAVAILABLE,
                    retryable=True,
                )
            raise ToolError(
                f"{service} refused the request ({detail}); trying again will not help.",
                status=ToolStatus.ERROR,
                retryable=False,
            )
        if not text.strip():
            return None
        try:
            reply = json.loads(text)
        except ValueError:
            raise ToolError(
                f"{service} failed: the reply is not JSON ({snippet!r}).",
                status=ToolStatus.ERROR,
                retryable=False,
            ) from None
        answer = own_answer(tool_name, reply)
        if isinstance(answer, ToolError):
            raise answer
        return reply if answer is None else answer

    return invoke
