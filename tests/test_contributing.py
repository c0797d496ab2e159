"""CONTRIBUTING.md names real code: every `module.function` and `Class.method` it cites exists,
so the walk through a frame's path cannot silently go stale after a rename."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import gateway

TEXT = (Path(__file__).parent.parent / "CONTRIBUTING.md").read_text()
REFERENCE = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def _all_modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(gateway.__path__, "gateway.")]
    return [importlib.import_module(n) for n in names if not n.endswith("__main__")]


def _resolves(reference: str, modules: list[ModuleType]) -> bool:
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):  # the longest module prefix, then attributes
        try:
            target: object = importlib.import_module("gateway." + ".".join(parts[:cut]))
        except ImportError:
            continue
        rest = parts[cut:]
        break
    else:  # `Class.method`: a class some module defines
        owners = [m for m in modules if isinstance(getattr(m, parts[0], None), type)]
        if not owners:
            return False
        target, rest = getattr(owners[0], parts[0]), parts[1:]
    for name in rest:
        if not hasattr(target, name):
            return False
        target = getattr(target, name)
    return True


def test_every_code_reference_in_contributing_exists() -> None:
    modules = _all_modules()
    references = {r for r in REFERENCE.findall(TEXT) if not r.endswith((".md", ".py", ".gz"))}
    references = {r for r in references if not r.startswith(("tests.", "bench."))}
    assert len(references) > 25
    missing = sorted(r for r in references if not _resolves(r, modules))
    assert missing == []


def test_a_stale_reference_is_caught() -> None:
    assert not _resolves("call.bridge.Call._no_such_step", _all_modules())
    assert _resolves("call.bridge.Call._barge_in", _all_modules())
