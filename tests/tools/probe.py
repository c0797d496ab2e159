"""Events a test's python tools set, so tests can wait on what happens inside a tool."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Probe:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[dict[str, object]] = field(default_factory=list)


PROBE = Probe()


def reset() -> Probe:
    """A fresh probe for this test (events bind to the running loop on first use)."""
    global PROBE
    PROBE = Probe()
    return PROBE
