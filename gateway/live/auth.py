"""OAuth access tokens for Vertex AI Live, refreshed before they expire.

Tokens from `google.auth.default` last about an hour; a phone call must never stall on an
expired one, so `token()` refreshes when the token is missing or within `refresh_margin_s`
(5 minutes) of expiry. Refreshing is blocking HTTP, so it runs in a thread; a lock makes
concurrent callers share one refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "FixedCredentials",
    "LiveAuthError",
    "RefreshableCredentials",
    "VertexTokenProvider",
    "fixed_token_provider",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_REFRESH_MARGIN_S = 300.0


class LiveAuthError(RuntimeError):
    """No usable Google credentials or token; the message says what to fix."""


class RefreshableCredentials(Protocol):
    """What we use of `google.auth.credentials.Credentials` (tests pass a fake)."""

    token: str | None
    expiry: datetime | None

    def refresh(self, request: Any) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _default_request() -> Any:
    from google.auth.transport.requests import Request

    return Request()


def _default_credentials() -> Any:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError as exc:
        raise LiveAuthError(
            f"no Google credentials for Vertex AI ({exc}); run "
            "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    return credentials


class VertexTokenProvider:
    """Bearer tokens for `Authorization` headers; one provider per process is enough."""

    def __init__(
        self,
        credentials: RefreshableCredentials | None = None,
        *,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        clock: Callable[[], datetime] = _utcnow,
        request_factory: Callable[[], Any] = _default_request,
    ) -> None:
        self._credentials = credentials
        self._margin = timedelta(seconds=refresh_margin_s)
        self._clock = clock
        self._request_factory = request_factory
        self._lock = asyncio.Lock()
        self.refresh_count = 0

    async def token(self) -> str:
        """A token valid for at least the refresh margin; refreshes (once) when needed."""
        credentials = self._credentials
        if credentials is not None and self._is_fresh(credentials):
            return credentials.token  # type: ignore[return-value]  # _is_fresh checked it
        async with self._lock:
            if self._credentials is None:
                self._credentials = await asyncio.to_thread(_default_credentials)
            credentials = self._credentials
            assert credentials is not None
            if not self._is_fresh(credentials):
                await asyncio.to_thread(self._refresh, credentials)
            token = credentials.token
            if not token:
                raise LiveAuthError("Google credentials refreshed but returned no access token")
            return token

    def _refresh(self, credentials: RefreshableCredentials) -> None:
        from google.auth.exceptions import GoogleAuthError

        try:
            credentials.refresh(self._request_factory())
        except GoogleAuthError as exc:
            raise LiveAuthError(f"cannot refresh the Google access token: {exc}") from None
        self.refresh_count += 1

    def _is_fresh(self, credentials: RefreshableCredentials) -> bool:
        if not credentials.token:
            return False
        expiry = credentials.expiry
        if expiry is None:
            return True  # google-auth: no expiry means the token does not expire
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)  # google-auth uses naive UTC datetimes
        return expiry - self._clock() > self._margin


class FixedCredentials:
    """A token that never expires: for Live sides on loopback (replays, tests) that speak the
    Vertex dialect but check no credentials. Never for a real endpoint."""

    def __init__(self, token: str) -> None:
        self.token: str | None = token
        self.expiry: datetime | None = None

    def refresh(self, request: Any) -> None:
        """Nothing to refresh."""


def fixed_token_provider(token: str) -> VertexTokenProvider:
    """A `VertexTokenProvider` that always answers `token` (see `FixedCredentials`)."""
    return VertexTokenProvider(FixedCredentials(token))
