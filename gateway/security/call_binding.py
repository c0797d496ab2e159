"""Call identity from us, not from the stream: an HMAC that ties a media stream to its webhook.

A stream's `start` message names its call (`callSid`, `accountSid`, `customParameters`), and
anyone who can open `/media` can write one. `/twiml`, whose request Twilio signed, issues a
short-lived binding over the call's identity and puts it in a `<Parameter>`; Twilio sends it
back in `start.customParameters`, and `/media` starts only calls whose binding verifies. So
the call SID that `end_call` / `transfer_call` act on through Twilio REST, the Account SID the
allow-list checks, and the agent and numbers the call is served with are those `/twiml`
issued. A binding starts one stream per process (a replayed upgrade starts nothing), and
expires after `BINDING_LIFETIME_S`.

The key is derived from `TWILIO_AUTH_TOKEN` (domain-separated), so every instance behind a
load balancer verifies what any of them issued. Sans-IO apart from an injectable clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACCOUNT_SID_PATTERN",
    "BINDING_LIFETIME_S",
    "BINDING_PARAMETER",
    "CALL_SID_PATTERN",
    "BindingRefused",
    "BoundCall",
    "CallBinder",
    "is_account_sid",
    "is_call_sid",
]

BINDING_PARAMETER: Final = "binding"
"""The `<Parameter>` (and `start.customParameters` key) that carries the binding."""
BINDING_LIFETIME_S: Final = 120
"""How long after `/twiml` answered a stream may start with its binding. Twilio opens the
stream as soon as it reads our TwiML (it has no verb before `<Connect>`)."""
BOUND_PARAMETERS: Final = ("agent", "from", "to")
"""The stream parameters the binding covers, besides the call and account SIDs."""
CALL_SID_PATTERN: Final = re.compile(r"CA[0-9a-f]{32}")
ACCOUNT_SID_PATTERN: Final = re.compile(r"AC[0-9a-f]{32}")
_KEY_LABEL: Final = b"gateway call binding v1"
_MAX_TOKEN_CHARS: Final = 80


def is_call_sid(value: str) -> bool:
    """Twilio's Call SID format: `CA` and 32 lower-case hex digits."""
    return CALL_SID_PATTERN.fullmatch(value) is not None


def is_account_sid(value: str) -> bool:
    """Twilio's Account SID format: `AC` and 32 lower-case hex digits."""
    return ACCOUNT_SID_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class BoundCall:
    """A call identity `/twiml` issued and a stream's `start` proved."""

    call_sid: str
    account_sid: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class BindingRefused:
    """Why a stream's `start` does not prove its identity: `missing`, `malformed`, `expired`,
    `mismatch` (a field differs from what was issued, or a forged MAC), `reused`."""

    reason: str


class CallBinder:
    """Issues and verifies bindings with one key; remembers bindings used until they expire."""

    def __init__(
        self,
        secret: str,
        *,
        lifetime_s: int = BINDING_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = hmac.new(secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._used: dict[str, int] = {}
        """Bindings that started a stream, with their expiry (pruned as they expire)."""

    def issue(
        self, call_sid: str, account_sid: str, parameters: Mapping[str, str | None]
    ) -> str:
        """The binding for a call `/twiml` answers: `<expiry>.<base64url HMAC-SHA256>`."""
        expires_at = int(self._clock()) + self._lifetime_s
        return f"{expires_at}.{self._mac(call_sid, account_sid, parameters, expires_at)}"

    def verify(
        self, call_sid: str, account_sid: str, parameters: Mapping[str, str]
    ) -> BoundCall | BindingRefused:
        """Check a stream's `start`: its SIDs and `parameters` (with the binding among them).

        A binding that verifies is spent: the same one cannot start another stream here.
        """
        token = parameters.get(BINDING_PARAMETER)
        if not token:
            return BindingRefused("missing")
        expiry_text, dot, mac = token.partition(".")
        if (
            not dot
            or len(token) > _MAX_TOKEN_CHARS
            or not expiry_text.isascii()
            or not expiry_text.isdigit()
        ):
            return BindingRefused("malformed")
        expires_at = int(expiry_text)
        now = self._clock()
        if now > expires_at:
            return BindingRefused("expired")
        expected = self._mac(call_sid, account_sid, parameters, expires_at)
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace")):
            return BindingRefused("mismatch")
        self._forget_expired(now)
        if token in self._used:
            return BindingRefused("reused")
        self._used[token] = expires_at
        return BoundCall(call_sid, account_sid, expires_at)

    def _mac(
        self,
        call_sid: str,
        account_sid: str,
        parameters: Mapping[str, str | None],
        expires_at: int,
    ) -> str:
        fields = [call_sid, account_sid, *(parameters.get(name) or "" for name in BOUND_PARAMETERS)]
        message = json.dumps([*fields, expires_at], separators=(",", ":")).encode("utf-8")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _forget_expired(self, now: float) -> None:
        expired = [token for token, expires_at in self._used.items() if expires_at < now]
        for token in expired:
            del self._used[token]
