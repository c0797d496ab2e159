"""gateway.event_loop.run: runs the coroutine to its result, on uvloop when preferred and
installed, with the start-up heap frozen out of the collector's way."""

from __future__ import annotations

import asyncio
import gc

import pytest

from gateway import event_loop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.fixture(autouse=True)
def _unfreeze() -> object:
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def test_runs_to_the_result_with_the_heap_frozen() -> None:
    gc.unfreeze()
    assert event_loop.run(_loop_type(), prefer_uvloop=False).startswith("asyncio")
    assert gc.get_freeze_count() > 0


def test_uses_uvloop_when_installed_and_preferred() -> None:
    pytest.importorskip("uvloop")
    assert event_loop.run(_loop_type()).startswith("uvloop")
