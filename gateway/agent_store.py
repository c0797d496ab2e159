"""The live agent set, swapped atomically on reload (SIGHUP or a file change in AGENTS_DIR).

Handlers read `store.current` when a call starts, so a new call gets the newest good set and a
live call keeps the one it started with. A reload that fails validation changes nothing: the
previous good set stays, and the error is logged for the operator.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import structlog

from gateway.agents import AgentConfigError, AgentSet, load_agents
from gateway.live.models import DEFAULT_MODEL

__all__ = ["WATCH_INTERVAL_S", "AgentStore", "agents_dir_snapshot"]

log = structlog.get_logger("gateway.agent_store")

WATCH_INTERVAL_S = 2.0
"""How often `watch` looks at AGENTS_DIR's files (one stat per file: cheap)."""
_IGNORED_DIRS = frozenset({"__pycache__", "node_modules"})
_IGNORED_SUFFIXES = (".pyc", ".db", ".sqlite", ".sqlite3", "-journal", "-wal", "-shm", ".swp", "~")

Snapshot = dict[str, tuple[int, int]]


def _files(directory: Path, ignore: Path | None) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        here = Path(root)
        dirs[:] = [
            d
            for d in dirs
            if d not in _IGNORED_DIRS
            and not d.startswith(".")
            and (ignore is None or (here / d).resolve() != ignore)
        ]
        for name in files:
            if not name.startswith(".") and not name.endswith(_IGNORED_SUFFIXES):
                yield here / name


def agents_dir_snapshot(directory: Path, *, ignore: Path | None = None) -> Snapshot:
    """(mtime_ns, size) of every file an agent set is built from; caches and databases skipped.

    `ignore` is a folder to leave out (the data dir, when it lives inside AGENTS_DIR).
    """
    snapshot: Snapshot = {}
    resolved = ignore.resolve() if ignore is not None else None
    for path in _files(directory, resolved):
        try:
            stat = path.stat()
        except OSError:
            continue  # deleted while we looked
        snapshot[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


class AgentStore:
    """Holds the current `AgentSet`; `reload()` replaces it only with a valid one."""

    def __init__(
        self,
        agents: AgentSet,
        directory: Path | None = None,
        *,
        ignore: Path | None = None,
        default_model: str = DEFAULT_MODEL,
    ) -> None:
        self._current = agents
        self._default_model = default_model
        self.directory = directory
        self._ignore = ignore
        self._snapshot: Snapshot = self._take_snapshot()
        self.reloads = 0
        self.failed_reloads = 0

    @property
    def current(self) -> AgentSet:
        return self._current

    def _take_snapshot(self) -> Snapshot:
        if self.directory is None or not self.directory.is_dir():
            return {}
        return agents_dir_snapshot(self.directory, ignore=self._ignore)

    def reload(self, *, trigger: str = "manual") -> bool:
        """Load the directory again; on any error keep the current set. True if swapped."""
        if self.directory is None:
            return False
        self._snapshot = self._take_snapshot()
        try:
            agents = load_agents(self.directory, default_model=self._default_model)
        except AgentConfigError as exc:
            self.failed_reloads += 1
            log.error(
                "agents_reload_failed",
                trigger=trigger,
                error=str(exc),
                kept=sorted(self._current.agents),
            )
            return False
        self._current = agents
        self.reloads += 1
        log.info("agents_reloaded", trigger=trigger, agents=sorted(agents.agents))
        return True

    def changed(self) -> bool:
        """Whether any agent file was added, removed or modified since the last look."""
        return self.directory is not None and self._take_snapshot() != self._snapshot

    def reload_if_changed(self) -> bool | None:
        """`reload()` when files changed; None when nothing changed."""
        if not self.changed():
            return None
        return self.reload(trigger="file_change")

    async def watch(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Reload whenever a file changes, until cancelled (a cheap periodic mtime scan)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                changed = await asyncio.to_thread(self.changed)
            except OSError as exc:
                log.warning("agents_watch_failed", error=str(exc))
                continue
            if changed:
                self.reload(trigger="file_change")
