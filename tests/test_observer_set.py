"""ObserverSet's per-hook dispatch: only observers that implement a hook are called, overrides
on the instance count, and a failing observer is dropped from every hook at once."""

from __future__ import annotations

from gateway.call.hooks import CallObserver, ObserverSet


class Counting(CallObserver):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def carrier_in(self, frame: str | bytes) -> None:
        self.seen.append(f"in:{frame!s}")

    def error(self, kind: str, detail: str) -> None:
        self.seen.append(f"error:{kind}")


class Failing(CallObserver):
    def __init__(self) -> None:
        self.calls = 0

    def carrier_in(self, frame: str | bytes) -> None:
        self.calls += 1
        raise RuntimeError("broken observer")

    def carrier_out(self, frame: str) -> None:
        self.calls += 1


def test_each_hook_reaches_the_observers_that_implement_it() -> None:
    counting, plain = Counting(), CallObserver()
    seen_out: list[str] = []
    plain.carrier_out = seen_out.append  # type: ignore[method-assign]  # an instance override
    events = ObserverSet([counting, plain])
    events.carrier_in("a")
    events.carrier_out("b")
    events.error("oops", "detail")
    events.live_audio_out(b"\x00\x00", 24000)  # nobody implements it: a no-op
    assert counting.seen == ["in:a", "error:oops"]
    assert seen_out == ["b"]


def test_a_failing_observer_is_dropped_from_every_hook_and_the_others_go_on() -> None:
    failing, counting = Failing(), Counting()
    events = ObserverSet([failing, counting])
    events.carrier_in("first")  # fails here …
    events.carrier_in("second")
    events.carrier_out("x")  # … so it no longer sees this hook either
    assert failing.calls == 1
    assert counting.seen == ["in:first", "in:second"]
    assert events  # the working observer is still there
