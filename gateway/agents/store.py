"""The live agent set, swapped atomically on reload (SIGHUP or a file change in AGENTS_DIR).

Handlers read `store.current` when a call starts, so a new call gets the newest good set and a
live call keeps the one it started with. A reload that fails validation changes nothing: the
previous good set stays, and the error is logged for the operator.

Loading (YAML, instruction files, importing python tools, whose module code may do anything)
never runs on the event loop once it serves calls: `reload_async` loads in a worker thread and
swaps on the loop. Reloads are serialised (one at a time, in request order), so the last one
requested loads the newest files and no two imports of an agent's module race. `watch` is the
one task that reloads a serving gateway, on file changes and on `request_reload` (SIGHUP).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import structlog

from gateway.agents.config import AgentConfigError, AgentSet, load_agents
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
        self.last_reload_error: str | None = None
        """Why the latest reload was refused (None: it swapped, or none ran yet)."""
        self.last_reload_at: datetime | None = None
        """When the latest reload finished (swapped or refused), UTC."""
        self._reload_lock = asyncio.Lock()
        self._requested: str | None = None
        """The trigger of a reload asked for by `request_reload`, until `watch` runs it."""
        self._wake = asyncio.Event()
        self._finished = asyncio.Event()
        """Set whenever a reload finishes (swapped or refused): `wait_reloads` waits on it."""

    @property
    def current(self) -> AgentSet:
        return self._current

    def _take_snapshot(self) -> Snapshot:
        if self.directory is None or not self.directory.is_dir():
            return {}
        return agents_dir_snapshot(self.directory, ignore=self._ignore)

    def reload(self, *, trigger: str = "manual") -> bool:
        """Load the directory again, here and now; on any error keep the current set.

        True if swapped. It blocks its thread while tool modules import: a serving gateway
        uses `reload_async` (or `request_reload`) instead.
        """
        if self.directory is None:
            return False
        return self._swap(self._load(self.directory), trigger)

    async def reload_async(self, *, trigger: str = "manual") -> bool:
        """`reload()` with the loading in a worker thread; reloads run one at a time."""
        directory = self.directory
        if directory is None:
            return False
        async with self._reload_lock:
            loaded = await asyncio.to_thread(self._load, directory)
            return self._swap(loaded, trigger)

    def request_reload(self, trigger: str = "sighup") -> None:
        """Ask `watch` to reload as soon as it can; returns at once (fit for a signal handler).

        Requests made while a reload runs are merged into one reload after it.
        """
        self._requested = trigger
        self._wake.set()

    def _load(self, directory: Path) -> AgentSet | Exception:
        """The new set, or why there is none (runs in a worker thread for `reload_async`)."""
        self._snapshot = self._take_snapshot()
        try:
            return load_agents(directory, default_model=self._default_model)
        except AgentConfigError as exc:
            return exc
        except Exception as exc:  # a bug, or a file system failing: never kill the watcher
            log.exception("agents_load_crashed")
            return exc

    async def wait_reloads(self, count: int) -> None:
        """Until `count` reloads in all (swapped or refused) have finished."""
        while self.reloads + self.failed_reloads < count:
            self._finished.clear()
            await self._finished.wait()

    def _swap(self, loaded: AgentSet | Exception, trigger: str) -> bool:
        self.last_reload_at = datetime.now(UTC)
        self.last_reload_error = None
        if isinstance(loaded, Exception):
            self.last_reload_error = str(loaded) or repr(loaded)
            self.failed_reloads += 1
            log.error(
                "agents_reload_failed",
                trigger=trigger,
                error=str(loaded) or repr(loaded),
                kept=sorted(self._current.agents),
            )
        else:
            self._current = loaded
            self.reloads += 1
            log.info("agents_reloaded", trigger=trigger, agents=sorted(loaded.agents))
        self._finished.set()
        return not isinstance(loaded, Exception)

    def changed(self) -> bool:
        """Whether any agent file was added, removed or modified since the last look."""
        return self.directory is not None and self._take_snapshot() != self._snapshot

    def reload_if_changed(self) -> bool | None:
        """`reload()` when files changed; None when nothing changed."""
        if not self.changed():
            return None
        return self.reload(trigger="file_change")

    async def watch(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Reload on `request_reload` and whenever a file changes, until cancelled.

        Files are looked at every `interval_s` (a cheap mtime scan, in a worker thread).
        """
        while True:
            try:
                async with asyncio.timeout(interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            trigger, self._requested = self._requested, None
            if trigger is None:
                try:
                    changed = await asyncio.to_thread(self.changed)
                except OSError as exc:
                    log.warning("agents_watch_failed", error=str(exc))
                    continue
                if not changed:
                    continue
                trigger = "file_change"
            await self.reload_async(trigger=trigger)
