"""gateway.live.auth: Vertex tokens are refreshed before they expire, once, and not otherwise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth.exceptions import RefreshError

from gateway.live.auth import LiveAuthError, VertexTokenProvider

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeCredentials:
    """Like google-auth credentials: naive-UTC expiry, refresh(request) sets a new token."""

    def __init__(self, token: str | None = None, expiry: datetime | None = None) -> None:
        self.token = token
        self.expiry = expiry
        self.requests: list[Any] = []
        self.fail = False

    def refresh(self, request: Any) -> None:
        if self.fail:
            raise RefreshError("invalid_grant")  # type: ignore[no-untyped-call]
        self.requests.append(request)
        self.token = f"token-{len(self.requests)}"
        self.expiry = (NOW + timedelta(hours=1)).replace(tzinfo=None)


def provider(credentials: FakeCredentials) -> VertexTokenProvider:
    return VertexTokenProvider(credentials, clock=lambda: NOW, request_factory=lambda: "request")


async def test_missing_token_is_fetched_once_then_reused() -> None:
    credentials = FakeCredentials()
    tokens = provider(credentials)
    assert await tokens.token() == "token-1"
    assert await tokens.token() == "token-1"
    assert credentials.requests == ["request"]


async def test_token_far_from_expiry_is_not_refreshed() -> None:
    credentials = FakeCredentials("valid", (NOW + timedelta(minutes=10)).replace(tzinfo=None))
    assert await provider(credentials).token() == "valid"
    assert credentials.requests == []


@pytest.mark.parametrize("minutes_left", [4, 5, -1])
async def test_token_within_five_minutes_of_expiry_is_refreshed(minutes_left: int) -> None:
    credentials = FakeCredentials("old", NOW + timedelta(minutes=minutes_left))  # aware expiry too
    tokens = provider(credentials)
    assert await tokens.token() == "token-1"
    assert tokens.refresh_count == 1


async def test_token_without_expiry_is_used_as_is() -> None:
    credentials = FakeCredentials("forever", None)
    assert await provider(credentials).token() == "forever"
    assert credentials.requests == []


async def test_concurrent_callers_share_one_refresh() -> None:
    credentials = FakeCredentials("old", NOW + timedelta(minutes=1))
    tokens = provider(credentials)
    results = await asyncio.gather(*(tokens.token() for _ in range(20)))
    assert set(results) == {"token-1"}
    assert len(credentials.requests) == 1


async def test_refresh_failure_is_a_clear_error() -> None:
    credentials = FakeCredentials()
    credentials.fail = True
    with pytest.raises(LiveAuthError, match="refresh"):
        await provider(credentials).token()
