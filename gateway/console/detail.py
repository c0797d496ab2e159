"""One recorded call in detail: transcript, notable events, waveform, downloads, replay command.

The JSONL is read line by line without decoding what the page does not show (audio, media
frames: a substring test skips them), so a long call costs one pass over its file. The
waveform is the peak of each 20 ms of the stereo WAV (caller left, agent right), read in
chunks, at most MAX_WAVEFORM_POINTS per lane (longer calls get wider points). A recording
that is only in the object store is first copied to a bounded local cache (`FileCache`).
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import threading
import wave
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from gateway.console.history import HistoryEntry, ReadableStore, RecordingLocation
from gateway.settings import RecordingsUrl

__all__ = ["FileCache", "recording_detail", "replay_command", "waveform"]

MAX_WAVEFORM_POINTS: Final = 5000
POINT_S: Final = 0.02
MAX_DETAIL_LINES: Final = 5000
"""Transcript lines and events each, at most."""
MAX_DETAIL_CHARS: Final = 300
CACHED_RECORDINGS: Final = 16
"""Recordings copied from the store kept in the local cache (least recently used go)."""
_SKIP: Final = (b'\\"media\\"', b'"audio"', b'"audio_energy"')
"""Lines with these are media frames or caller audio: nothing the page shows."""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


class FileCache:
    """Files of recordings fetched from the store, in a private temporary folder."""

    def __init__(self, store: ReadableStore, limit: int = CACHED_RECORDINGS) -> None:
        self._store = store
        self._limit = limit
        self._root: Path | None = None
        self._stems: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, stem: str, location: RecordingLocation) -> Path:
        """A local path of the file at `location` (fetched once)."""
        if location.path is not None:
            return location.path
        assert location.key is not None
        direct = self._store.local_path(location.key)
        if direct is not None:
            return direct
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="gateway-console-"))
            folder = self._root / stem
            folder.mkdir(exist_ok=True)
            self._stems[stem] = None
            self._stems.move_to_end(stem)
            while len(self._stems) > self._limit:
                old, _ = self._stems.popitem(last=False)
                shutil.rmtree(self._root / old, ignore_errors=True)
            target = folder / location.name
            marker = folder / f".{location.name}.{location.tag}"
            if not marker.exists():
                partial = folder / f".{location.name}.partial"
                self._store.download(location.key, partial)
                partial.replace(target)
                marker.touch()
            return target

    def close(self) -> None:
        with self._lock:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None


def _open_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield from unzipped
        else:
            yield from raw


def _frame_event(frame: str) -> dict[str, Any] | None:
    try:
        value = json.loads(frame)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _read_events(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """(transcript lines, notable events, last t) of the JSONL at `path`."""
    lines: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    open_role: str | None = None
    last_t = 0.0

    def event(t: float, kind: str, detail: str) -> None:
        if len(events) < MAX_DETAIL_LINES:
            events.append({"t": round(t, 3), "kind": kind, "detail": _clip(detail)})

    for raw in _open_lines(path):
        if any(marker in raw for marker in _SKIP):
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        t = obj.get("t")
        t = float(t) if isinstance(t, int | float) else last_t
        last_t = max(last_t, t)
        kind = obj.get("kind")
        if kind == "live_in":
            content = (obj.get("message") or {}).get("serverContent")
            if not isinstance(content, dict):
                continue
            for key, role in (("outputTranscription", "agent"), ("inputTranscription", "caller")):
                text = (content.get(key) or {}).get("text")
                if not isinstance(text, str) or not text:
                    continue
                if open_role == role and lines and lines[-1]["role"] == role:
                    lines[-1]["text"] += text
                elif len(lines) < MAX_DETAIL_LINES:
                    lines.append({"t": round(t, 3), "role": role, "text": text})
                    open_role = role
            if content.get("interrupted") or content.get("turnComplete"):
                open_role = None
        elif kind == "barge_in":
            event(t, "barge_in", f"{obj.get('frames_dropped', 0)} frames dropped")
        elif kind == "tool_call":
            args = json.dumps(obj.get("args", {}), separators=(",", ":"))
            event(t, "tool_call", f"{obj.get('name')} {args}")
        elif kind == "tool_result":
            outcome = f"{obj.get('outcome')} in {obj.get('duration_s')} s"
            event(t, "tool_result", f"{obj.get('name')} -> {outcome}")
        elif kind == "live_reconnected":
            event(t, "reconnect", f"Live dropped (close code {obj.get('close_code')})")
        elif kind == "error":
            event(t, "error", f"{obj.get('error')}: {obj.get('detail', '')}")
        elif kind == "twilio_in" and isinstance(obj.get("frame"), str):
            frame = obj["frame"]
            if "dtmf" not in frame and "mark" not in frame:
                continue
            parsed = _frame_event(frame)
            if parsed is None:
                continue
            name = parsed.get("event")
            if name == "dtmf":
                digit = (parsed.get("dtmf") or {}).get("digit")
                event(t, "dtmf", f"caller pressed {digit}")
            elif name == "mark":
                event(t, "mark", f"{(parsed.get('mark') or {}).get('name')} played")
    for line in lines:
        line["text"] = " ".join(line["text"].split())
    return [line for line in lines if line["text"]], events, last_t


def waveform(path: Path | None) -> dict[str, Any]:
    """Peaks (0..1) per point of each lane of a stereo 16-bit WAV; empty lanes without one."""
    empty = {"rate_hz": round(1 / POINT_S), "caller": [], "agent": []}
    if path is None or not path.is_file():
        return empty
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 2 or wav.getsampwidth() != 2:
                return empty
            rate = wav.getframerate()
            frames = wav.getnframes()
            per_point = max(1, int(rate * POINT_S))
            points = -(-frames // per_point)
            group = max(1, -(-points // MAX_WAVEFORM_POINTS))  # 20 ms points per output point
            step = per_point * group
            caller: list[float] = []
            agent: list[float] = []
            chunk_frames = step * max(1, 8000 // max(1, group))
            while True:
                data = wav.readframes(chunk_frames)
                if not data:
                    break
                samples = np.frombuffer(data, dtype="<i2").reshape(-1, 2)
                count = len(samples)
                pad = (-count) % step
                if pad:
                    samples = np.vstack((samples, np.zeros((pad, 2), dtype="<i2")))
                peaks = np.abs(samples.astype(np.int32)).reshape(-1, step, 2).max(axis=1)
                caller.extend(np.round(peaks[:, 0] / 32768.0, 3).tolist())
                agent.extend(np.round(peaks[:, 1] / 32768.0, 3).tolist())
    except (OSError, EOFError, wave.Error, ValueError):
        return empty
    return {"rate_hz": round(1 / (POINT_S * group), 3), "caller": caller, "agent": agent}


def replay_command(entry: HistoryEntry, url: RecordingsUrl | None, local: Path) -> str:
    """The command that replays this call as a test (README: `gateway replay`): the file
    where it is, or, from a bucket, the copy commands first."""
    jsonl = entry.files["jsonl"]
    if jsonl.path is not None or url is None or url.scheme == "file" or jsonl.key is None:
        return f"gateway replay {local}"
    keys = [location.key for kind in ("jsonl", "audio") if (location := entry.files.get(kind))]
    objects = [f"{url.scheme}://{url.bucket}/{key}" for key in keys if key]
    if url.scheme == "gs":
        copy = f"gcloud storage cp {' '.join(objects)} ."
    else:
        copy = " && ".join(f"aws s3 cp {obj} ." for obj in objects)
    return f"{copy} && gateway replay {jsonl.name}"


def recording_detail(
    entry: HistoryEntry,
    cache: FileCache | None,
    url: RecordingsUrl | None,
) -> dict[str, Any]:
    """The body of GET /console/api/history/{id} (blocking: a worker thread)."""

    def local(kind: str) -> Path | None:
        location = entry.files.get(kind)
        if location is None:
            return None
        if location.path is not None:
            return location.path
        return cache.path(entry.stem, location) if cache is not None else None

    jsonl_path = local("jsonl")
    assert jsonl_path is not None
    transcript, events, last_t = _read_events(jsonl_path)
    item = entry.item()
    base = f"/console/api/history/{entry.stem}"
    downloads: dict[str, str | None] = {
        kind: f"{base}/download/{kind}" if kind in entry.files else None
        for kind in ("jsonl", "wav", "txt", "audio")
    }
    return {
        "call": item,
        "meta": entry.meta,
        "transcript": transcript,
        "events": events,
        "waveform": waveform(local("wav")),
        "duration_s": item["duration_s"] if item["duration_s"] is not None else round(last_t, 3),
        "complete": entry.ended is not None and entry.stopped is None,
        "downloads": downloads,
        "audio_url": f"{base}/audio.wav" if "wav" in entry.files else None,
        "replay_command": replay_command(entry, url, jsonl_path),
    }
