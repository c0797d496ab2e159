"""The outbound registry and the state rules, sans-IO: bounded, ids unguessable and checked,
a call's carrier id fixed once known, states never going backwards."""

from __future__ import annotations

import pytest

from gateway.outbound.registry import (
    OutboundCall,
    OutboundRegistry,
    RegistryFull,
    is_outbound_id,
    new_outbound_id,
)
from gateway.outbound.states import CallState, is_machine, next_state, twilio_state

SID_A = "CA" + "a" * 32
SID_B = "CA" + "b" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record() -> OutboundCall:
    return OutboundCall(new_outbound_id(), "sales", "+15557770001", "+15550009999", "twilio", {})


def test_ids_are_random_and_only_ours_parse() -> None:
    ids = {new_outbound_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_outbound_id(i) for i in ids)
    for bad in ("oc_" + "A" * 24, "oc_" + "0" * 23, "xx_" + "0" * 24, "oc_" + "0" * 25, ""):
        assert not is_outbound_id(bad)


def test_full_of_calls_under_way_it_refuses_and_ended_ones_make_room() -> None:
    clock = Clock()
    registry = OutboundRegistry(max_records=2, keep_s=60.0, clock=clock)
    first, second = registry.add(record()), registry.add(record())
    with pytest.raises(RegistryFull):
        registry.add(record())
    assert registry.mark_ended(first) and not registry.mark_ended(first)  # once
    third = registry.add(record())  # the ended one went, oldest first
    assert registry.get(first.id) is None
    assert [c.id for c in registry] == [third.id, second.id]


def test_ended_calls_are_kept_for_keep_s() -> None:
    clock = Clock()
    registry = OutboundRegistry(max_records=10, keep_s=60.0, clock=clock)
    call = registry.add(record())
    registry.set_carrier_call_id(call, SID_A)
    registry.mark_ended(call)
    clock.now += 59
    registry.add(record())
    assert registry.get(call.id) is call
    clock.now += 2
    registry.add(record())
    assert registry.get(call.id) is None
    assert registry.by_carrier_call_id("twilio", SID_A) is None


def test_a_call_takes_one_carrier_id_and_refuses_others() -> None:
    registry = OutboundRegistry()
    call = registry.add(record())
    assert registry.claim(call.id, "") is None
    assert registry.claim(call.id, SID_A) is call  # adopted: first signed report
    assert registry.claim(call.id, SID_B) is None
    assert not registry.set_carrier_call_id(call, SID_B)
    assert registry.by_carrier_call_id("twilio", SID_A) is call
    assert registry.by_carrier_call_id("signalwire", SID_A) is None
    assert registry.claim("oc_" + "0" * 24, SID_A) is None


def test_states_move_forward_and_end_once() -> None:
    q, r, p = CallState.QUEUED, CallState.RINGING, CallState.IN_PROGRESS
    assert [twilio_state(s) for s in ("initiated", "ringing", "in-progress", "no-answer")] == [
        q, r, p, CallState.NO_ANSWER,
    ]  # fmt: skip
    assert twilio_state("bogus") is None
    assert next_state(p, r, machine=False) is p
    assert next_state(r, p, machine=False) is p
    assert next_state(p, CallState.COMPLETED, machine=True) is CallState.VOICEMAIL
    assert next_state(CallState.BUSY, CallState.COMPLETED, machine=False) is CallState.BUSY
    assert next_state(CallState.VOICEMAIL, CallState.COMPLETED, machine=True) is (
        CallState.VOICEMAIL
    )
    assert [is_machine(a) for a in ("human", "unknown", "machine_start", "fax", None)] == [
        False, False, True, True, False,
    ]  # fmt: skip
