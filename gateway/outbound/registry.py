"""This process's outbound calls: one record per `POST /calls`, in memory and bounded.

In memory on purpose: a call's webhooks (voice, status) name it by our id in their query
string, so they must reach the instance that placed it. Behind a load balancer, route
`/twilio/voice?outbound=…` and `/twilio/status?outbound=…` to the placing instance (sticky on
the `outbound` query parameter), or run one instance for outbound calls. A webhook for a call
this instance does not know is refused.

Bounded: at most `max_records` calls; ended ones go first, after `keep_s` (24 h) or when the
limit is reached (oldest first). A registry full of calls still under way refuses new ones.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from gateway.agents.config import AgentConfig
from gateway.outbound.states import CallState

__all__ = [
    "DEFAULT_KEEP_S",
    "DEFAULT_MAX_RECORDS",
    "ID_PREFIX",
    "OutboundCall",
    "OutboundRegistry",
    "RegistryFull",
    "is_outbound_id",
    "new_outbound_id",
]

ID_PREFIX: Final = "oc_"
DEFAULT_MAX_RECORDS: Final = 10_000
DEFAULT_KEEP_S: Final = 24 * 3600.0
_ID_HEX: Final = 24


def new_outbound_id() -> str:
    """`oc_` and 24 random hex digits: unguessable, so an id is not a way to find calls."""
    return ID_PREFIX + secrets.token_hex(_ID_HEX // 2)


def is_outbound_id(value: str) -> bool:
    hex_part = value.removeprefix(ID_PREFIX)
    return (
        value.startswith(ID_PREFIX)
        and len(hex_part) == _ID_HEX
        and all(c in "0123456789abcdef" for c in hex_part)
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RegistryFull(RuntimeError):
    """Every record is a call still under way: no room for another."""


@dataclass(slots=True, eq=False)
class OutboundCall:
    """One outbound call as the API reports it (`to_json`), plus what the gateway needs."""

    id: str
    agent: str
    to: str
    from_number: str
    carrier: str
    variables: Mapping[str, str]
    callback_url: str | None = None
    agent_config: AgentConfig | None = field(default=None, repr=False)
    """The agent as it was when the call was placed (its post-call webhook, voicemail)."""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: CallState = CallState.QUEUED
    carrier_call_id: str | None = None
    account_id: str | None = None
    end_reason: str | None = None
    answered_by: str | None = None
    duration_s: int | None = None
    recording: dict[str, str] | None = None
    streamed: bool = False
    """A media stream served this call (its post-call webhook went with the stream)."""
    stream_end_reason: str | None = None
    """Why its media stream ended (gateway.call.outcome.EndReason), once it has."""
    hang_up_requested: bool = False
    ended: bool = False
    """The carrier reported the call's end (or placing it failed): notifications went out."""
    ended_monotonic: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "agent": self.agent,
            "to": self.to,
            "from": self.from_number,
            "carrier": self.carrier,
            "variables": dict(self.variables),
            "created_at": _iso(self.created_at),
            "carrier_call_id": self.carrier_call_id,
            "end_reason": self.end_reason,
            "answered_by": self.answered_by,
            "duration_s": self.duration_s,
            "recording": dict(self.recording) if self.recording is not None else None,
        }


class OutboundRegistry:
    """Records by our id, and by the carrier's call id once known. Single event loop: no locks."""

    def __init__(
        self,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        keep_s: float = DEFAULT_KEEP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_records = max_records
        self.keep_s = keep_s
        self._clock = clock
        self._calls: OrderedDict[str, OutboundCall] = OrderedDict()
        self._by_carrier_id: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[OutboundCall]:
        """Newest first."""
        return reversed(list(self._calls.values()))

    def add(self, call: OutboundCall) -> OutboundCall:
        """Keep `call`; raises RegistryFull when only calls under way are kept."""
        self._evict()
        if len(self._calls) >= self.max_records:
            raise RegistryFull(f"{len(self._calls)} outbound calls are under way")
        self._calls[call.id] = call
        return call

    def get(self, call_id: str) -> OutboundCall | None:
        return self._calls.get(call_id)

    def by_carrier_call_id(self, carrier: str, carrier_call_id: str) -> OutboundCall | None:
        call_id = self._by_carrier_id.get((carrier, carrier_call_id))
        return self._calls.get(call_id) if call_id is not None else None

    def claim(self, call_id: str, carrier_call_id: str) -> OutboundCall | None:
        """The call `call_id` if the carrier's `carrier_call_id` is its own, else None.

        A call whose id the carrier's REST answer has not told us yet takes the first one a
        (signed) webhook names: the carrier can call back before its REST answer arrives.
        """
        call = self._calls.get(call_id)
        if call is None or not carrier_call_id:
            return None
        if call.carrier_call_id is None:
            self.set_carrier_call_id(call, carrier_call_id)
        return call if call.carrier_call_id == carrier_call_id else None

    def set_carrier_call_id(self, call: OutboundCall, carrier_call_id: str) -> bool:
        """Record the carrier's id for `call`; False if it already has another one."""
        if call.carrier_call_id not in (None, carrier_call_id):
            return False
        call.carrier_call_id = carrier_call_id
        self._by_carrier_id[(call.carrier, carrier_call_id)] = call.id
        return True

    def mark_ended(self, call: OutboundCall) -> bool:
        """Note that `call` is over; False if it already was (so its end is handled once)."""
        if call.ended:
            return False
        call.ended = True
        call.ended_monotonic = self._clock()
        return True

    def _evict(self) -> None:
        now = self._clock()
        ended = [c for c in self._calls.values() if c.ended and c.ended_monotonic is not None]
        for call in ended:
            old = now - (call.ended_monotonic or now) >= self.keep_s
            if old or len(self._calls) >= self.max_records:
                self._remove(call)

    def _remove(self, call: OutboundCall) -> None:
        del self._calls[call.id]
        if call.carrier_call_id is not None:
            self._by_carrier_id.pop((call.carrier, call.carrier_call_id), None)
