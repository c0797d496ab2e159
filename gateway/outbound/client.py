"""An HTTP client of the gateway's call API (`POST/GET/DELETE /calls`), for `gateway dial` and
campaigns.

It is the only code here that talks HTTP; the campaign engine sees the `Placer` protocol, so its
tests run against an in-memory fake. Failures are told apart by what they mean for the call:
`ApiError` (the gateway answered no: no call exists), `NotSent` (the request never left: no
call exists) and `DeliveryUnknown` (the request may have arrived: a call may exist).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Protocol

import aiohttp

__all__ = [
    "NON_TERMINAL_STATES",
    "TERMINAL_STATES",
    "ApiError",
    "CallRecord",
    "DeliveryUnknown",
    "GatewayClient",
    "NotSent",
    "PlaceRequest",
    "Placer",
]

NON_TERMINAL_STATES: Final = frozenset({"queued", "ringing", "in-progress"})
TERMINAL_STATES: Final = frozenset(
    {"completed", "busy", "no-answer", "failed", "voicemail", "canceled"}
)


@dataclass(frozen=True)
class PlaceRequest:
    """What `POST /calls` is asked: one call of `agent` to `to`."""

    agent: str
    to: str
    from_: str | None = None
    carrier: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    callback_url: str | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body; optional fields the caller left out are not sent (server defaults)."""
        body: dict[str, Any] = {"agent": self.agent, "to": self.to}
        if self.from_ is not None:
            body["from"] = self.from_
        if self.carrier is not None:
            body["carrier"] = self.carrier
        if self.variables:
            body["variables"] = dict(self.variables)
        if self.callback_url is not None:
            body["callback_url"] = self.callback_url
        return body


@dataclass(frozen=True)
class CallRecord:
    """A call as the API reports it."""

    id: str
    state: str
    agent: str | None = None
    to: str | None = None
    from_: str | None = None
    carrier: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    carrier_call_id: str | None = None
    end_reason: str | None = None
    answered_by: str | None = None
    duration_s: float | None = None
    recording: str | None = None
    """Where the call's audio is (the `wav` of the API's `recording` object)."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The call object exactly as the API sent it (`gateway dial --json` prints it)."""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, data: object) -> CallRecord:
        """Parse the API's call object; raises `ValueError` when `id` or `state` is missing."""
        if not isinstance(data, dict):
            raise ValueError("a call must be a JSON object")
        call_id, state = data.get("id"), data.get("state")
        if not isinstance(call_id, str) or not call_id or not isinstance(state, str):
            raise ValueError("a call needs a string `id` and `state`")
        variables = data.get("variables")
        duration = data.get("duration_s")
        return cls(
            id=call_id,
            state=state,
            agent=_opt_str(data.get("agent")),
            to=_opt_str(data.get("to")),
            from_=_opt_str(data.get("from")),
            carrier=_opt_str(data.get("carrier")),
            variables=(
                {str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict)
                else {}
            ),
            created_at=_opt_str(data.get("created_at")),
            carrier_call_id=_opt_str(data.get("carrier_call_id")),
            end_reason=_opt_str(data.get("end_reason")),
            answered_by=_opt_str(data.get("answered_by")),
            duration_s=(
                float(duration)
                if isinstance(duration, int | float) and not isinstance(duration, bool)
                else None
            ),
            recording=_recording(data.get("recording")),
            raw=dict(data),
        )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _recording(value: object) -> str | None:
    """The API's `recording` is `{"jsonl", "wav", "txt"}` (paths or URLs): the audio's."""
    if isinstance(value, dict):
        return _opt_str(value.get("wav")) or _opt_str(value.get("jsonl"))
    return _opt_str(value)


class ApiError(Exception):
    """The gateway answered with an error: no call was created (for `place`)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status = status
        self.message = message
        self.field = field
        where = f"{field}: " if field else ""
        super().__init__(f"HTTP {status}: {where}{message}")


class NotSent(Exception):
    """The request never reached the gateway (cannot connect): nothing happened there."""


class DeliveryUnknown(Exception):
    """The request may have reached the gateway but no answer came back (timeout, dropped
    connection, unreadable answer): for `place`, a call may or may not exist."""


class Placer(Protocol):
    """What the campaign engine needs from the gateway: place a call, look at one."""

    async def place(self, request: PlaceRequest) -> CallRecord: ...

    async def get(self, call_id: str) -> CallRecord: ...


class GatewayClient:
    """`Placer` over HTTP. Use as `async with GatewayClient(url, token) as client:`."""

    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def place(self, request: PlaceRequest) -> CallRecord:
        return CallRecord.from_json(await self._call("POST", "/calls", request.body()))

    async def get(self, call_id: str) -> CallRecord:
        return CallRecord.from_json(await self._call("GET", f"/calls/{_quote(call_id)}"))

    async def hangup(self, call_id: str) -> CallRecord | None:
        """`DELETE /calls/{id}`: the call as it is now (None when the answer has no body)."""
        data = await self._call("DELETE", f"/calls/{_quote(call_id)}")
        return CallRecord.from_json(data) if data is not None else None

    async def _call(self, method: str, path: str, body: object = None) -> object:
        if self._session is None:
            raise RuntimeError("use GatewayClient as `async with`")
        url = self.base_url + path
        try:
            async with self._session.request(method, url, json=body) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientConnectorError as exc:  # no connection: the request never left
            raise NotSent(f"cannot reach the gateway at {self.base_url}: {exc.os_error}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryUnknown(f"{method} {url}: no answer ({exc!r})") from exc
        data: object = None
        if text:
            try:
                data = json.loads(text)
            except ValueError:
                if status < 400:
                    raise DeliveryUnknown(f"{method} {url}: answer is not JSON") from None
        if status >= 400:
            raise _api_error(status, data, text)
        return data


def _api_error(status: int, data: object, text: str) -> ApiError:
    """`{"error": {"field", "message"}}`, or whatever the body says when it is not that."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        field_name = error.get("field")
        return ApiError(
            status,
            message if isinstance(message, str) else json.dumps(error),
            field_name if isinstance(field_name, str) else None,
        )
    if isinstance(error, str):
        return ApiError(status, error)
    return ApiError(status, text.strip()[:200] or "no details")


def _quote(call_id: str) -> str:
    from urllib.parse import quote

    return quote(call_id, safe="")
