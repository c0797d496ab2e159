"""Twilio's REST API: place a call (Calls create), and mid-call hang up, or transfer with `<Dial>`
(Calls resource update).

`POST {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with basic
auth (API key SID + secret, or account SID + auth token) and a form body: `Status=completed`
hangs up; `Twiml=<Response><Dial>…</Dial></Response>` replaces the call's TwiML, which ends our
media stream and dials the target. `place_call` is `POST …/Accounts/{AccountSid}/Calls.json`
with To, From, Url, StatusCallback (+ events) and MachineDetection. Built on the `twilio`
package's aiohttp-based async client; the base URL is configurable so tests can point it at a
fake on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

import aiohttp

from gateway.security.call_binding import is_account_sid, is_call_sid
from gateway.settings import Settings
from gateway.telephony.carrier import CarrierRestError
from gateway.tools.spec import TransferTarget

__all__ = [
    "DEFAULT_API_BASE_URL",
    "PlacedCall",
    "TwilioCredentials",
    "TwilioRest",
    "TwilioRestError",
    "build_dial_twiml",
]

DEFAULT_API_BASE_URL = "https://api.twilio.com"
REST_TIMEOUT_S = 10.0

T = TypeVar("T")


class TwilioRestError(CarrierRestError):
    """A Twilio REST request failed (HTTP error, network, timeout); the message says which."""


@dataclass(frozen=True)
class TwilioCredentials:
    """Who we are to Twilio's REST API. `account_sid` is the default account of the URL path."""

    username: str
    password: str = field(repr=False)
    account_sid: str | None = None
    base_url: str = DEFAULT_API_BASE_URL

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioCredentials | None:
        """API key SID + secret, else account SID + auth token; None when neither is complete."""
        base_url = settings.twilio_api_base_url.rstrip("/")
        if settings.twilio_api_key_sid and settings.twilio_api_key_secret:
            return cls(
                settings.twilio_api_key_sid,
                settings.twilio_api_key_secret,
                settings.twilio_account_sid,
                base_url,
            )
        if settings.twilio_account_sid and settings.twilio_auth_token:
            return cls(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                settings.twilio_account_sid,
                base_url,
            )
        return None


def build_dial_twiml(target: TransferTarget) -> str:
    """`<Response><Dial>+1…</Dial></Response>` (or `<Sip>` for a sip: URI)."""
    attributes = f" callerId={quoteattr(target.caller_id)}" if target.caller_id else ""
    if target.number.startswith("sip:"):
        inner = f"<Sip>{escape(target.number)}</Sip>"
    else:
        inner = escape(target.number)
    return f"<Response><Dial{attributes}>{inner}</Dial></Response>"


@dataclass(frozen=True)
class PlacedCall:
    """What Twilio answered to a Calls create: the new call's SID, its account, its status."""

    call_sid: str
    account_sid: str
    status: str


class TwilioRest:
    """Mid-call REST operations for one process; each request uses its own HTTP session."""

    def __init__(self, credentials: TwilioCredentials, *, timeout_s: float = REST_TIMEOUT_S):
        self.credentials = credentials
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioRest | None:
        credentials = TwilioCredentials.from_settings(settings)
        return cls(credentials) if credentials is not None else None

    async def hang_up(self, account_sid: str | None, call_sid: str) -> None:
        """End the call for every party (`Status=completed`)."""
        await self._update(account_sid, call_sid, status="completed")

    async def transfer(
        self, account_sid: str | None, call_sid: str, target: TransferTarget
    ) -> None:
        """Replace the call's TwiML with a `<Dial>` to `target` (our stream ends)."""
        await self._update(account_sid, call_sid, twiml=build_dial_twiml(target))

    async def _update(self, account_sid: str | None, call_sid: str, **fields: Any) -> None:
        # Never a path built from text that is not a SID (the library formats it in as given).
        if not is_call_sid(call_sid):
            raise TwilioRestError("not a Twilio Call SID (CA + 32 hex digits)")

        async def update(calls: Any) -> None:
            await calls(quote(call_sid, safe="")).update_async(**fields)

        await self._with_calls(account_sid, update)

    async def place_call(
        self,
        *,
        to: str,
        from_number: str,
        url: str,
        status_callback: str,
        status_callback_events: tuple[str, ...],
        machine_detection: str | None = None,
        account_sid: str | None = None,
    ) -> PlacedCall:
        """Start a call to `to` whose answer Twilio fetches from `url` (Calls create)."""
        options: dict[str, Any] = {}
        if machine_detection:
            options["machine_detection"] = machine_detection

        async def create(calls: Any) -> Any:
            return await calls.create_async(
                to=to,
                from_=from_number,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=list(status_callback_events),
                **options,
            )

        account, created = await self._with_calls(account_sid, create)
        call_sid = str(created.sid or "")
        if not is_call_sid(call_sid):
            raise TwilioRestError("Twilio answered without a Call SID")
        return PlacedCall(call_sid, str(created.account_sid or account), str(created.status or ""))

    async def _with_calls(
        self, account_sid: str | None, action: Callable[[Any], Awaitable[T]]
    ) -> tuple[str, T]:
        """Run `action` on the account's Calls list resource, one HTTP session per request;
        every failure becomes a TwilioRestError that says which. Returns (account, result)."""
        from twilio.base.exceptions import TwilioException
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        account = account_sid or self.credentials.account_sid
        if not account:
            raise TwilioRestError("no account SID: set TWILIO_ACCOUNT_SID")
        if not is_account_sid(account):
            raise TwilioRestError("not a Twilio Account SID (AC + 32 hex digits)")
        http = AsyncTwilioHttpClient()
        try:
            client = Client(
                self.credentials.username,
                self.credentials.password,
                account_sid=account,
                http_client=http,
            )
            client.api.base_url = self.credentials.base_url
            async with asyncio.timeout(self.timeout_s):
                calls = client.api.v2010.accounts(quote(account, safe="")).calls
                return account, await action(calls)
        except TimeoutError:
            raise TwilioRestError(f"no answer from Twilio within {self.timeout_s:g} s") from None
        except TwilioException as exc:
            raise TwilioRestError(str(exc).strip() or repr(exc)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TwilioRestError(f"cannot reach Twilio: {exc!r}") from None
        finally:
            await http.close()
