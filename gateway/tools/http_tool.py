"""HTTP tools: POST the model's arguments as JSON to a URL; the JSON reply goes to the model.

The request carries the call's identity in headers (`X-Gateway-Tool`, `X-Gateway-Call-Sid`,
`X-Gateway-Agent`, `X-Gateway-From`, `X-Gateway-To`), the tool's `context:` values (JSON in
`X-Gateway-Context`, when it has any) and, with a secret, an HMAC signature of the body
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

What leaves and what is read is bounded: a redirect is followed only within the URL's origin
(scheme, host and port, at most `MAX_REDIRECTS`), so the body, configured headers (an API key)
and the signature never go to another host; a redirect elsewhere is an "error". A reply longer
than `MAX_REPLY_BYTES` is an "error" too, and is never read further than that.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from gateway.ops.url_redaction import redact_url
from gateway.tools.context import ToolContext, ToolError, ToolResult, ToolStatus
from gateway.tools.python_tool import ToolInvoker
from gateway.tools.signing import signature_headers
from gateway.tools.spec import HttpToolConfig

__all__ = [
    "CONTEXT_HEADER",
    "MAX_ERROR_BODY_CHARS",
    "MAX_REDIRECTS",
    "MAX_REPLY_BYTES",
    "http_invoker",
    "own_answer",
]

CONTEXT_HEADER = "X-Gateway-Context"
"""The tool's `context:` values, as a JSON object (ASCII, so any text fits a header)."""

MAX_ERROR_BODY_CHARS = 200
"""How much of an error reply's body the model gets to see."""

RETRYABLE_HTTP_STATUSES = frozenset({408, 425, 429})
"""Besides 5xx: statuses that say "try again later"."""

MAX_REPLY_BYTES = 256 * 1024
"""The longest reply body read (after decompression): far more than a model can use."""

MAX_REDIRECTS = 5
"""Same-origin redirects followed per call (a trailing-slash fix, a moved route)."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

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


class _Refused(Exception):
    """No usable reply: `reason` goes to the model, `event` and `fields` to the log."""

    def __init__(self, event: str, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.event = event
        self.reason = reason
        self.fields = fields


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return (url.scheme, url.host, url.port)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or None once it is longer than `MAX_REPLY_BYTES` (reading stops there)."""
    data = bytearray()
    while chunk := await response.content.read(MAX_REPLY_BYTES + 1 - len(data)):
        data += chunk
        if len(data) > MAX_REPLY_BYTES:
            return None
    return bytes(data)


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


async def _exchange(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, str]:
    """POST `body`, following same-origin redirects only; (HTTP status, reply text)."""
    target = URL(url)
    origin = _origin(target)
    method, data = "POST", body
    for _ in range(MAX_REDIRECTS + 1):
        async with session.request(
            method, target, data=data, headers=headers, allow_redirects=False
        ) as response:
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                reply = await _read_capped(response)
                if reply is None:
                    raise _Refused(
                        "http_tool_reply_too_large",
                        f"answered with more than {MAX_REPLY_BYTES // 1024} KiB, which is not "
                        "read",
                        limit_bytes=MAX_REPLY_BYTES,
                    )
                return response.status, _decode(reply, response.charset)
            try:
                following = response.url.join(URL(location))
            except ValueError:
                following = URL()
            if _origin(following) != origin:
                raise _Refused(
                    "http_tool_redirect_refused",
                    "redirected the request to another site, where it is not sent",
                    http_status=response.status,
                    url=redact_url(str(response.url)),
                    location=redact_url(location),
                )
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, data = "GET", b""  # what browsers (and aiohttp) do: see the other URL
            target = following
    raise _Refused(
        "http_tool_redirect_refused",
        f"redirected the request more than {MAX_REDIRECTS} times",
        url=redact_url(url),
    )


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
        if context.values:
            headers[CONTEXT_HEADER] = json.dumps(
                dict(context.values), separators=(",", ":"), ensure_ascii=True
            )
        if secret is not None:
            headers.update(signature_headers(secret, body, config.hmac_header))
        try:
            async with aiohttp.ClientSession() as session:
                status, text = await _exchange(session, config.url, body, headers)
        except _Refused as refused:
            context.log.warning(refused.event, tool=tool_name, **refused.fields)
            raise ToolError(
                f"{service} {refused.reason}; trying again will not help.",
                status=ToolStatus.ERROR,
                retryable=False,
            ) from None
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
