"""HMAC-SHA256 signatures on the gateway's outgoing webhooks (HTTP tools, post-call summary).

The receiver recomputes `HMAC-SHA256(secret, f"{timestamp}.{body}")` over the raw request body
and compares it with the signature header (`sha256=<hex>`); the timestamp header
(`X-Gateway-Timestamp`, Unix seconds) lets it refuse old, replayed requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_PREFIX", "TIMESTAMP_HEADER", "sign", "signature_headers", "verify"]

TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_PREFIX = "sha256="


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """`sha256=<hex>` for `body` sent at `timestamp` (Unix seconds)."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_headers(
    secret: str, body: bytes, header: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The two headers that sign one request."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(ts), header: sign(secret, body, ts)}


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    max_age_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), signature)
