"""URLs as they may be logged: scheme, host, port and path; never a query, fragment or login.

A configured URL may carry a secret (`LIVE_URL=wss://…?key=…`, `https://user:pass@…`, a
webhook token in the query), and log lines outlive the secret's rotation.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """`url` without its query, fragment and credentials (a relative URL keeps its path)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a broken IPv6 literal
        return "<invalid url>"
    netloc = parts.netloc.rpartition("@")[2]  # host[:port] as written, without user:password
    if parts.scheme:
        return f"{parts.scheme}://{netloc}{parts.path}"
    return f"//{netloc}{parts.path}" if netloc else parts.path
