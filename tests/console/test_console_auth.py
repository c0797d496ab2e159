"""The console is off without CONSOLE_TOKEN, and only the token (or its session) opens it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import server as gateway_server
from gateway.console.auth import COOKIE_NAME, ConsoleAuth
from gateway.settings import SettingsError, load_settings
from tests.console.backend_harness import BEARER, TOKEN, console_gateway
from tests.gateway_harness import loopback_gateway

SERVER_SOURCE = Path(gateway_server.__file__).read_text()
CONSOLE_PATHS = (
    "/console", "/console/calls/CA1", "/console/history/x", "/console/agents",
    "/console/glance", "/console/static/app.js", "/console/api/instance",
    "/console/api/calls", "/console/api/events", "/console/api/history",
    "/console/api/agents", "/console/api/glance", "/console/api/nothing",
)  # fmt: skip


async def test_without_a_token_every_console_path_is_404() -> None:
    async with loopback_gateway() as gateway:
        for path in CONSOLE_PATHS:
            response = await gateway.client.get(path, headers=BEARER)
            assert response.status == 404, path
        hangup = await gateway.client.post("/console/api/calls/CA1/hangup", headers=BEARER)
        assert hangup.status == 404


def test_the_token_must_be_long_enough() -> None:
    with pytest.raises(SettingsError, match="CONSOLE_TOKEN: must be at least 16"):
        load_settings(env_file=None, console_token="short")
    assert "console-test" not in repr(load_settings(env_file=None, console_token=TOKEN))


async def test_wrong_or_missing_credentials_are_401(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway:
        client = gateway.client
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Basic {TOKEN}"},
                        {"Cookie": f"{COOKIE_NAME}=1.abc"}):  # fmt: skip
            api = await client.get("/console/api/calls", headers=headers)
            assert api.status == 401
            assert await api.json() == {"error": "unauthorized"}
            page = await client.get("/console", headers=headers)
            assert page.status == 401 and page.content_type == "text/html"
            assert "Unauthorized" in await page.text()
            static = await client.get("/console/static/app.js", headers=headers)
            assert static.status == 401
        # Unknown paths say nothing to a stranger…
        assert (await client.get("/console/api/nothing")).status == 401
        assert (await client.get("/console/whatever")).status == 401
        # …and are 404 once authorized.
        assert (await client.get("/console/api/nothing", headers=BEARER)).status == 404
        assert (await client.get("/console/whatever", headers=BEARER)).status == 404
        wrong_login = await client.get("/console", params={"token": "nope"}, allow_redirects=False)
        assert wrong_login.status == 401 and COOKIE_NAME not in wrong_login.cookies


async def test_the_bearer_token_opens_the_api(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway:
        instance = await gateway.get_json("/console/api/instance")
        assert instance["instance"] and instance["version"]
        assert instance["started_at"].endswith("Z")
        assert await gateway.get_json("/console/api/calls") == {"calls": []}


async def test_the_token_once_gives_a_session_cookie(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway:
        client = gateway.client
        login = await client.get("/console", params={"token": TOKEN}, allow_redirects=False)
        assert login.status == 303 and login.headers["Location"] == "/console"
        cookie = login.cookies[COOKIE_NAME]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/console" and int(cookie["max-age"]) == 12 * 3600
        assert not cookie["secure"]  # plain http on loopback, no https PUBLIC_URL
        assert TOKEN not in cookie.value
        # The test client keeps the cookie: everything under /console opens with it.
        shell = await client.get("/console")
        assert shell.status == 200 and shell.content_type == "text/html"
        assert (await client.get("/console/api/calls")).status == 200
        assert (await client.get("/console/static/app.js")).status == 200
        assert (await client.get("/console/history/abc")).status == 200
        events = await client.get("/console/api/events")
        assert events.status == 200
        events.close()
        # A tampered cookie opens nothing.
        expiry, _, signature = cookie.value.partition(".")
        tampered = f"{int(expiry) + 3600}.{signature}"
        client.session.cookie_jar.clear()
        for value in (tampered, f"{expiry}.{'0' * len(signature)}", "garbage"):
            response = await client.get(
                "/console/api/calls", headers={"Cookie": f"{COOKIE_NAME}={value}"}
            )
            assert response.status == 401, value


async def test_the_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    async with console_gateway(tmp_path, public_url="https://gw.example.com") as gateway:
        login = await gateway.client.get("/console", params={"token": TOKEN}, allow_redirects=False)
        assert login.status == 303
        assert "Secure" in login.headers["Set-Cookie"]


def test_sessions_expire_and_are_bound_to_the_token() -> None:
    now = [1_000_000.0]
    auth = ConsoleAuth(TOKEN, clock=lambda: now[0], max_age_s=60)
    value = auth.session_value()
    assert auth.session_valid(value)
    assert not ConsoleAuth(TOKEN + "x", clock=lambda: now[0]).session_valid(value)
    now[0] += 61
    assert not auth.session_valid(value)
    assert TOKEN not in repr(auth)


async def test_the_token_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        async with console_gateway(tmp_path) as gateway:
            client = gateway.client
            await client.get("/console", params={"token": TOKEN}, allow_redirects=False)
            await client.get("/console", params={"token": TOKEN[:-1] + "!"})
            await client.get("/console/api/calls", headers=BEARER)
            await client.get("/console/api/calls", headers={"Authorization": "Bearer " + "x" * 20})
    assert any(entry["event"] == "console_session_started" for entry in logs)
    assert any(entry["event"] == "console_unauthorized" for entry in logs)
    # The test server's own access log (aiohttp.access) prints request lines; `gateway serve`
    # runs without one (AppRunner(access_log=None)), so only the gateway's loggers count.
    ours = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    everything = repr(logs) + "\n".join(ours)
    assert TOKEN not in everything and TOKEN[:-1] not in everything
    assert "access_log=None" in SERVER_SOURCE


async def test_static_files_have_their_types_and_stay_in_their_folder(tmp_path: Path) -> None:
    static = Path(__file__).parents[2] / "gateway" / "console" / "static"
    async with console_gateway(tmp_path) as gateway:
        client = gateway.client
        for name, content_type in (("app.js", "text/javascript"), ("console.css", "text/css")):
            if not (static / name).is_file():
                continue
            response = await client.get(f"/console/static/{name}", headers=BEARER)
            assert response.status == 200 and response.content_type == content_type
            assert response.headers["Cache-Control"] == "no-cache"
            assert await response.read() == (static / name).read_bytes()
        for bad in ("../routes.py", "..%2froutes.py", "%2e%2e/auth.py", "nope.js", "x.py",
                    ".hidden.js", "a/../../auth.py"):  # fmt: skip
            response = await client.get(f"/console/static/{bad}", headers=BEARER)
            assert response.status == 404, bad
        for page in ("/console", "/console/calls/CA1", "/console/history/x", "/console/agents",
                     "/console/glance"):  # fmt: skip
            response = await client.get(page, headers=BEARER)
            assert response.status == 200 and response.content_type == "text/html", page
            assert response.headers["Cache-Control"] == "no-cache"
