"""The console's agents page: the agents serving calls, what `gateway agents check` says of
each file, and how the latest hot reload went.

Checking a file loads it as `gateway agents check` does (`load_agent_file`: YAML, instruction
file, tools resolved, model rules), which may import python tools, so it runs in a worker
thread and is cached until a file under AGENTS_DIR changes (`agents_dir_snapshot`).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from gateway.agents.config import (
    AGENT_FOLDER_FILES,
    AgentConfig,
    AgentConfigError,
    agent_files,
    load_agent_file,
)
from gateway.agents.store import AgentStore, agents_dir_snapshot

__all__ = ["AgentsView"]


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _check(path: Path, default_model: str) -> dict[str, Any]:
    try:
        load_agent_file(path, default_model=default_model)
    except AgentConfigError as exc:
        return {"ok": False, "errors": [line for line in str(exc).splitlines() if line]}
    except Exception as exc:  # a tool module that raises on import, say
        return {"ok": False, "errors": [f"{path}: {exc!r}"]}
    return {"ok": True, "errors": []}


def _name_of(path: Path) -> str:
    return path.parent.name if path.name in AGENT_FOLDER_FILES else path.stem


class AgentsView:
    """Builds GET /console/api/agents from the agent store."""

    def __init__(self, store: AgentStore, default_model: str) -> None:
        self._store = store
        self._default_model = default_model
        self._cache: tuple[Any, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    async def listing(self) -> dict[str, Any]:
        agents = await asyncio.to_thread(self._agents)
        store = self._store
        return {
            "agents": agents,
            "reload": {
                "ok": store.last_reload_error is None,
                "error": store.last_reload_error,
                "at": _iso(store.last_reload_at),
            },
        }

    def _agents(self) -> list[dict[str, Any]]:
        """Worker thread: every agent serving, then every file that serves none."""
        current = self._store.current
        directory = self._store.directory
        snapshot = (
            agents_dir_snapshot(directory) if directory is not None and directory.is_dir() else {}
        )
        key = (id(current), tuple(sorted(snapshot.items())))
        with self._lock:
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            entries = []
            seen: set[Path] = set()
            for agent in current.agents.values():
                source = agent.source_path
                if source is not None:
                    seen.add(source.resolve())
                entries.append(self._entry(agent, source))
            files = agent_files(directory) if directory is not None and directory.is_dir() else []
            for path in files:
                if path.resolve() in seen:
                    continue
                entries.append(
                    {
                        "name": _name_of(path),
                        "loaded": False,
                        "lines": [],
                        "carriers": [],
                        "model": None,
                        "voice": None,
                        "tools": [],
                        "source": str(path),
                        "check": _check(path, self._default_model),
                    }
                )
            self._cache = (key, entries)
            return entries

    def _entry(self, agent: AgentConfig, source: Path | None) -> dict[str, Any]:
        return {
            "name": agent.name,
            "loaded": True,
            "lines": list(agent.lines),
            "carriers": list(agent.carriers),
            "model": agent.model_id(self._default_model),
            "voice": agent.voice,
            "tools": [spec.tool_name for spec in agent.tools],
            "source": None if source is None else str(source),
            "check": (
                _check(source, self._default_model)
                if source is not None and source.is_file()
                else {"ok": True, "errors": []}
            ),
        }
