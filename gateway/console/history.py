"""The call history: an index of every recording, in RECORDINGS_DIR and in RECORDINGS_URL.

Behind a load balancer each instance uploads its own calls to the shared store, so the store
is where every call is; RECORDINGS_DIR adds the ones not uploaded yet (and every call when no
store is set). A recording is known by its stem (`20251125T142700Z-CA123…`); its index entry
comes from its head (the `call_started` line, a few lines in) and its tail (`call_ended`,
then possibly `recording_stopped`), read with ranged reads, and is cached by (where, size,
version tag), so paging reads nothing again and a recording still being written is read again
only when it grew. The store is listed again at most every LISTING_TTL_S, or at once when the
spool changed (an upload removes the spool's copy). Everything here blocks: call it from a
worker thread.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from gateway.recording.upload import StoredObject

__all__ = [
    "STEM",
    "HistoryEntry",
    "HistoryQuery",
    "ReadableStore",
    "RecordingIndex",
    "RecordingLocation",
]

HEAD_BYTES: Final = 256 * 1024
"""How far into a recording its `call_started` line is looked for."""
TAIL_BYTES: Final = 64 * 1024
MAX_GZ_BYTES: Final = 64 * 1024 * 1024
"""A gzipped recording bigger than this is indexed from its head only."""
MAX_ENTRIES: Final = 100_000
LISTING_TTL_S: Final = 10.0
STEM: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")
_PHONE_LIKE: Final = re.compile(r"[+\d\s().-]+")


class ReadableStore(Protocol):
    """What the history needs of an object store (gateway.recording.upload's stores)."""

    def list_objects(self) -> list[StoredObject]: ...

    def read_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes: ...

    def download(self, key: str, target: Path) -> None: ...

    def local_path(self, key: str) -> Path | None: ...


@dataclass(frozen=True)
class RecordingLocation:
    """Where one file of a recording is: a local path, or a key in the store."""

    name: str
    size: int
    tag: str
    path: Path | None = None
    key: str | None = None


@dataclass
class HistoryEntry:
    stem: str
    meta: dict[str, Any]
    ended: dict[str, Any] | None
    stopped: str | None
    files: dict[str, RecordingLocation] = field(default_factory=dict)
    """By kind: jsonl, audio, wav, txt."""

    @property
    def started_at(self) -> str:
        value = self.meta.get("started_at")
        return value if isinstance(value, str) else ""

    def item(self) -> dict[str, Any]:
        meta = self.meta
        ended = self.ended or {}
        duration = ended.get("duration_s")
        return {
            "id": self.stem,
            "call_sid": meta.get("call_sid"),
            "agent": meta.get("agent"),
            "carrier": meta.get("carrier", "twilio"),
            "from": meta.get("from"),
            "to": meta.get("to"),
            "started_at": self.started_at or None,
            "duration_s": duration if isinstance(duration, int | float) else None,
            "end_reason": ended.get("reason") if isinstance(ended.get("reason"), str) else None,
        }


@dataclass(frozen=True)
class HistoryQuery:
    q: str = ""
    agent: str = ""
    end_reason: str = ""
    date_from: str = ""
    date_to: str = ""

    def matches(self, entry: HistoryEntry) -> bool:
        item = entry.item()
        if self.agent and item["agent"] != self.agent:
            return False
        if self.end_reason and item["end_reason"] != self.end_reason:
            return False
        day = entry.started_at[:10]
        if self.date_from and (not day or day < self.date_from):
            return False
        if self.date_to and (not day or day > self.date_to):
            return False
        if self.q:
            needle = self.q.strip().lower()
            fields = [item["from"], item["to"], item["call_sid"], entry.stem,
                      entry.meta.get("stream_sid")]  # fmt: skip
            if any(needle in str(value).lower() for value in fields if value):
                return True
            digits = re.sub(r"\D", "", needle)  # "+1 (555) 123" finds +1555123…
            if not digits or not _PHONE_LIKE.fullmatch(needle):
                return False
            numbers = (re.sub(r"\D", "", str(item[k] or "")) for k in ("from", "to"))
            return any(digits in number for number in numbers)
        return True


def _kind_of(name: str) -> tuple[str, str] | None:
    """(stem, kind) of a recording's file name; None for anything else."""
    for suffix, kind in (
        (".jsonl.gz", "jsonl"), (".jsonl", "jsonl"), (".audio.gz", "audio"), (".audio", "audio"),
        (".wav", "wav"), (".txt", "txt"),
    ):  # fmt: skip
        if name.endswith(suffix) and not name.startswith("."):
            stem = name[: -len(suffix)]
            return (stem, kind) if STEM.fullmatch(stem) else None
    return None


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line.strip()]


def _json_line(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_head(head: bytes, whole: bool) -> dict[str, Any]:
    """The `call_started` fields found in `head` ({} if none)."""
    lines = head.split(b"\n")
    if not whole:
        lines = lines[:-1]  # the last one may be cut
    for line in lines:
        if b'"call_started"' in line:
            value = _json_line(line)
            if value is not None and value.get("kind") == "call_started":
                return {k: v for k, v in value.items() if k not in ("t", "kind", "a")}
    return {}


def parse_tail(tail: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(`call_ended` fields, `recording_stopped` reason) from the end of a recording."""
    ended: dict[str, Any] | None = None
    stopped: str | None = None
    for line in reversed(_lines(tail)[-4:]):
        if b'"call_ended"' in line or b'"recording_stopped"' in line:
            value = _json_line(line)
            if value is None:
                continue
            if value.get("kind") == "call_ended" and ended is None:
                ended = {k: v for k, v in value.items() if k not in ("kind", "a")}
            elif value.get("kind") == "recording_stopped" and stopped is None:
                stopped = str(value.get("reason"))
    return ended, stopped


class RecordingIndex:
    """Every recording's history entry (see the module docstring). Thread-safe."""

    def __init__(
        self,
        directory: Path,
        store: ReadableStore | None = None,
        *,
        listing_ttl_s: float = LISTING_TTL_S,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.directory = directory
        self.store = store
        self.listing_ttl_s = listing_ttl_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._listing_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, int, str], HistoryEntry | None] = OrderedDict()
        self._listing: list[StoredObject] = []
        self._listed_at = -float("inf")
        self._spool_seen: frozenset[str] = frozenset()
        self.reads = 0
        """Recordings read so far (head and tail): what the cache saves."""

    # ------------------------------------------------------------------ files

    def _local_files(self) -> dict[str, dict[str, RecordingLocation]]:
        found: dict[str, dict[str, RecordingLocation]] = {}
        try:
            entries = list(os.scandir(self.directory))
        except (FileNotFoundError, NotADirectoryError):
            return found
        for entry in entries:
            parsed = _kind_of(entry.name)
            if parsed is None or not entry.is_file():
                continue
            stat = entry.stat()
            stem, kind = parsed
            found.setdefault(stem, {})[kind] = RecordingLocation(
                entry.name, stat.st_size, f"{stat.st_mtime_ns:x}", path=Path(entry.path)
            )
        return found

    def _store_files(self, spool: frozenset[str]) -> dict[str, dict[str, RecordingLocation]]:
        if self.store is None:
            return {}
        with self._listing_lock:  # one listing at a time; the others use it
            now = time.monotonic()
            if now - self._listed_at >= self.listing_ttl_s or spool != self._spool_seen:
                self._listing = self.store.list_objects()
                self._listed_at = now
                self._spool_seen = spool
            listing = self._listing
        found: dict[str, dict[str, RecordingLocation]] = {}
        for obj in listing:
            parsed = _kind_of(obj.key.rpartition("/")[2])
            if parsed is None:
                continue
            stem, kind = parsed
            found.setdefault(stem, {})[kind] = RecordingLocation(
                obj.key.rpartition("/")[2], obj.size, obj.etag, key=obj.key
            )
        return found

    def files(self) -> dict[str, dict[str, RecordingLocation]]:
        """Every recording's files by stem: the spool's where it has the JSONL, else the
        store's."""
        local = self._local_files()
        stored = self._store_files(frozenset(local))
        merged = dict(stored)
        for stem, kinds in local.items():
            if "jsonl" in kinds or stem not in merged:
                merged[stem] = kinds
        return {stem: kinds for stem, kinds in merged.items() if "jsonl" in kinds}

    # ------------------------------------------------------------------ reading

    def read(self, location: RecordingLocation, start: int = 0, end: int | None = None) -> bytes:
        if location.path is not None:
            with location.path.open("rb") as file:
                file.seek(start)
                return file.read() if end is None else file.read(max(0, end - start))
        assert self.store is not None and location.key is not None
        return self.store.read_bytes(location.key, start, end)

    def _entry(self, stem: str, files: dict[str, RecordingLocation]) -> HistoryEntry | None:
        jsonl = files["jsonl"]
        cache_key = (str(jsonl.path or jsonl.key), jsonl.size, jsonl.tag)
        with self._lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                entry = self._cache[cache_key]
                if entry is not None:
                    entry.files = files
                return entry
        entry = self._read_entry(stem, jsonl)
        if entry is not None:
            entry.files = files
        with self._lock:
            self._cache[cache_key] = entry
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return entry

    def _read_entry(self, stem: str, jsonl: RecordingLocation) -> HistoryEntry | None:
        self.reads += 1
        try:
            if jsonl.name.endswith(".gz"):
                head, tail, whole = self._read_gz(jsonl)
            elif jsonl.size <= HEAD_BYTES + TAIL_BYTES:
                head = tail = self.read(jsonl)
                whole = True
            else:
                head = self.read(jsonl, 0, HEAD_BYTES)
                tail = self.read(jsonl, jsonl.size - TAIL_BYTES, jsonl.size)
                whole = False
        except (OSError, EOFError, zlib.error):
            return None
        except Exception:  # a store error: the entry is tried again at the next listing
            return None
        meta = parse_head(head, whole)
        if not meta:
            return None
        ended, stopped = parse_tail(tail)
        return HistoryEntry(stem, meta, ended, stopped)

    def _read_gz(self, jsonl: RecordingLocation) -> tuple[bytes, bytes, bool]:
        if jsonl.size > MAX_GZ_BYTES:
            raw = self.read(jsonl, 0, HEAD_BYTES)
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, HEAD_BYTES)
            return head, b"", False
        data = gzip.decompress(self.read(jsonl))
        return data[:HEAD_BYTES], data[-TAIL_BYTES:], len(data) <= HEAD_BYTES

    # ------------------------------------------------------------------ queries

    def entries(self) -> list[HistoryEntry]:
        """Every readable recording, newest first."""
        found = []
        for stem, files in self.files().items():
            entry = self._entry(stem, files)
            if entry is not None:
                found.append(entry)
        found.sort(key=lambda e: (e.started_at, e.stem), reverse=True)
        return found

    def search(
        self, query: HistoryQuery, page: int, page_size: int
    ) -> tuple[list[dict[str, Any]], int]:
        matching = [entry for entry in self.entries() if query.matches(entry)]
        start = (page - 1) * page_size
        return [entry.item() for entry in matching[start : start + page_size]], len(matching)

    def entry(self, stem: str) -> HistoryEntry | None:
        if not STEM.fullmatch(stem):
            return None
        files = self.files().get(stem)
        return None if files is None else self._entry(stem, files)
