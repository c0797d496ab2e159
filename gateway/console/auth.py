"""Who may use the operator console: CONSOLE_TOKEN as a bearer token, or a session cookie.

`GET /console?token=<CONSOLE_TOKEN>` once sets `console_session`: `<expiry>.<HMAC-SHA256>` of
the expiry, keyed with a key derived from the token (so changing the token ends every
session, and the cookie never carries the token itself). HttpOnly, SameSite=Strict,
Path=/console, Secure on https (the request's own scheme, or PUBLIC_URL's). Every compare is
constant-time, and nothing here logs a token, a cookie or a query string.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web

__all__ = ["COOKIE_NAME", "SESSION_MAX_AGE_S", "ConsoleAuth"]

COOKIE_NAME: Final = "console_session"
SESSION_MAX_AGE_S: Final = 12 * 3600
_KEY_LABEL: Final = b"gateway-console-session-v1"


class ConsoleAuth:
    """Checks requests against the console token; issues and verifies session cookies."""

    def __init__(
        self,
        token: str,
        *,
        secure_cookie: bool = False,
        max_age_s: int = SESSION_MAX_AGE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token.encode("utf-8")
        self._key = hmac.new(self._token, _KEY_LABEL, hashlib.sha256).digest()
        self._secure_cookie = secure_cookie
        self.max_age_s = max_age_s
        self._clock = clock

    def __repr__(self) -> str:  # never the token
        return "ConsoleAuth(<token>)"

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self._token, candidate.encode("utf-8"))

    def session_value(self) -> str:
        """A fresh session cookie value, valid for `max_age_s`."""
        expiry = int(self._clock()) + self.max_age_s
        return f"{expiry}.{self._sign(str(expiry))}"

    def session_valid(self, value: str) -> bool:
        expiry, sep, signature = value.partition(".")
        if not sep or not expiry.isdigit() or len(expiry) > 12:
            return False
        if not hmac.compare_digest(self._sign(expiry), signature):
            return False
        return int(expiry) > self._clock()

    def _sign(self, expiry: str) -> str:
        return hmac.new(self._key, expiry.encode("ascii"), hashlib.sha256).hexdigest()

    def authorized(self, request: web.Request) -> bool:
        """A bearer token that matches, or a valid session cookie."""
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return self.token_matches(credentials.strip())
        cookie = request.cookies.get(COOKIE_NAME)
        return cookie is not None and self.session_valid(cookie)

    def set_session_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.session_value(),
            max_age=self.max_age_s,
            path="/console",
            httponly=True,
            secure=self._secure_cookie or request.secure,
            samesite="Strict",
        )
