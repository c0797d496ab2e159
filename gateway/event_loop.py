"""How `gateway serve` runs its event loop: on uvloop (a dependency everywhere but Windows),
else asyncio's own, with everything built at start-up frozen out of the garbage collector's way.

* uvloop is a faster loop (libuv): 5–15 % less CPU per call-minute in bench/capacity.py, the
  same behaviour (the tests run on asyncio's loop, bench/ on both).
* `gc.freeze()`: modules, agents, the app — hundreds of thousands of objects that live as long
  as the process — would otherwise be walked by every full collection, a pause of tens of
  milliseconds that lands on every call in flight at that moment (bench/RESULTS.md, Capacity).
  Frozen, they are never scanned; objects of calls are still collected as before.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, prefer_uvloop: bool = True) -> T:
    """`asyncio.run(main)`, on uvloop when installed (and preferred), start-up heap frozen."""
    gc.collect()
    gc.freeze()
    if prefer_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
