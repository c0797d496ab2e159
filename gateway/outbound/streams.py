"""The outbound registry seen from a media stream: which agent the call gets, how it ended.

A stream's `outbound` parameter is only a claim: it counts when the registry knows the id and
the carrier's call id it registered is the stream's own (`start.call_sid`, which the stream
binding vouches for). Anything else is ignored and logged as `outbound_mismatch`, so no stream
can take another call's agent, variables or state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import structlog

from gateway.agents.config import AgentConfig
from gateway.call.hooks import CallObserver, CallView
from gateway.ops.logs import clip
from gateway.outbound.agents import agent_for_call, voicemail_policy
from gateway.outbound.notify import outbound_section
from gateway.outbound.registry import OutboundCall, OutboundRegistry
from gateway.outbound.states import is_machine
from gateway.telephony.base import StreamStart

if TYPE_CHECKING:
    from gateway.call.outcome import CallStats, EndReason

__all__ = ["ANSWERED_BY_PARAMETER", "OUTBOUND_PARAMETER", "OutboundStreams"]

log = structlog.get_logger("gateway.outbound")

OUTBOUND_PARAMETER: Final = "outbound"
"""The stream parameter naming our outbound call id."""
ANSWERED_BY_PARAMETER: Final = "answered_by"
"""`machine` when the agent leaves a message on an answering machine (informational: the
registry's own verdict is what the agent is given)."""


class OutboundStreams:
    """For one carrier's streams (`carrier`): implements the bridge's `OutboundAgents`."""

    def __init__(self, registry: OutboundRegistry, carrier: str) -> None:
        self._registry = registry
        self._carrier = carrier

    def call_for(self, start: StreamStart, *, quiet: bool = False) -> OutboundCall | None:
        """The outbound call `start` belongs to, or None (not outbound, or a false claim)."""
        claimed = start.custom_parameters.get(OUTBOUND_PARAMETER)
        if not claimed:
            return None
        call = self._registry.get(claimed)
        if (
            call is None
            or call.carrier != self._carrier
            or call.carrier_call_id is None
            or call.carrier_call_id != start.call_sid
        ):
            if not quiet:
                log.warning(
                    "outbound_mismatch",
                    outbound=clip(claimed),
                    call_sid=start.call_sid,
                    known=call is not None,
                )
            return None
        return call

    def agent_for(self, start: StreamStart, agent: AgentConfig) -> AgentConfig:
        """`agent` as the outbound call `start` claims runs it (variables, outbound greeting or
        voicemail message); `agent` itself when the claim does not hold."""
        call = self.call_for(start)
        if call is None:
            return agent
        if agent.name != call.agent:
            log.warning("outbound_mismatch", outbound=call.id, agent=agent.name)
            return agent
        call.streamed = True
        return agent_for_call(agent, call.variables, machine=is_machine(call.answered_by))

    def leaves_voicemail(self, start: StreamStart) -> bool:
        """Whether `start`'s call reached a machine and its agent leaves a message (the
        bridge ends the call once the message has played)."""
        call = self.call_for(start, quiet=True)
        agent = call.agent_config if call is not None else None
        return (
            call is not None
            and agent is not None
            and is_machine(call.answered_by)
            and voicemail_policy(agent) == "leave_message"
        )

    def summary(self, view: CallView) -> Mapping[str, Any] | None:
        """The `outbound` part of the stream's post-call summary (None: not outbound)."""
        call = self.call_for(view.start, quiet=True) if view.start is not None else None
        return outbound_section(call) if call is not None else None

    def observer(self) -> CallObserver:
        """Notes why the stream of an outbound call ended (its `end_reason`)."""
        return _StreamEnd(self)


class _StreamEnd(CallObserver):
    def __init__(self, streams: OutboundStreams) -> None:
        self._streams = streams
        self._call: OutboundCall | None = None

    def call_started(self, call: CallView) -> None:
        if call.start is not None:
            self._call = self._streams.call_for(call.start, quiet=True)

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        if self._call is not None:
            self._call.stream_end_reason = reason.value
