"""Durable recordings: each finished recording copied from RECORDINGS_DIR to RECORDINGS_URL.

With RECORDINGS_URL set, RECORDINGS_DIR is a *spool*. When the recorder reports a recording
finished (`Recordings.on_written`), a manifest is written beside it,
`RECORDINGS_DIR/.uploads/<stem>.json`: the recording's files (every `<stem>.*`), the call's id,
and `uploaded: false`. One uploader task takes the recordings in order from a bounded queue and
uploads each file as `<prefix>/<file name>` from a worker thread (the storage clients are
synchronous); the store's answer is checked (size, plus the SHA-256 / CRC32C the client sends),
the manifest is marked `uploaded: true`, then the spool copies and the manifest are removed
(RECORDINGS_KEEP_LOCAL keeps both). So the spool always says what is still to be sent:

* a recording still being written has no manifest and is never uploaded;
* a failed upload leaves everything in place: it is retried after a back-off that doubles per
  failure in a row (RECORDINGS_UPLOAD_BACKOFF_S, jittered, capped at
  RECORDINGS_UPLOAD_MAX_BACKOFF_S), each failure logged with the recording and its call's id;
* at start-up every manifest not yet `uploaded` is queued again (a restart resumes), and one
  that is `uploaded` has its clean-up finished;
* at shutdown the uploader gets RECORDINGS_UPLOAD_SHUTDOWN_S; what is left waits in the spool.

Nothing here runs on a call's path: the recorder's callback only starts a small task, and every
file or network operation runs off the event loop. Upload threads are daemon threads, so an
upload hung on a dead network never holds the process at exit. google-cloud-storage and boto3
are imported only when the URL's scheme needs them, on the first upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import hashlib
import json
import mimetypes
import os
import random
import secrets
import shutil
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.ops.metrics import METRICS
from gateway.settings import RecordingsUrl, parse_recordings_url

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "MANIFEST_DIR",
    "MAX_QUEUED_UPLOADS",
    "UPLOADER",
    "FileStore",
    "GcsStore",
    "ObjectStore",
    "RecordingUploader",
    "S3Store",
    "Spool",
    "StoredObject",
    "UploadMetrics",
    "add_uploader",
    "store_for",
]

log = structlog.get_logger("gateway.recording.upload")

MANIFEST_DIR: Final = ".uploads"
"""The spool's folder of manifests (hidden, so no `<stem>.*` glob and no listing sees it)."""
MAX_QUEUED_UPLOADS: Final = 10_000
"""Recordings the uploader holds in memory; more stay in the spool (manifest written) and are
queued by a rescan of the spool once the queue is empty."""
REQUEST_TIMEOUT_S: Final = 60.0
"""Per request to the store; a hung connection fails the attempt, which is retried."""
_ERROR_CHARS: Final = 300
_CALL_STARTED_SCAN_BYTES: Final = 1024 * 1024
"""How far into a JSONL the call's id is looked for (its `call_started` line comes early)."""

T = TypeVar("T")


class FinishedRecording(Protocol):
    """What the recorder reports (its `RecordingFiles`): the JSONL names the stem."""

    @property
    def jsonl(self) -> Path: ...

    @property
    def complete(self) -> bool: ...


@dataclass(frozen=True)
class StoredObject:
    """One object of a store's listing (`list_objects`): its key, size and version tag."""

    key: str
    size: int
    etag: str


class UploadVerificationError(RuntimeError):
    """The store answered, but not with the object that was sent."""


# ------------------------------------------------------------------ stores (worker thread)


class ObjectStore(Protocol):
    """Where recordings go. `put` runs in a worker thread, may block, and raises on failure."""

    url: RecordingsUrl

    def put(self, path: Path, key: str) -> None:
        """Store the file at `path` as object `key` and check the store has it, or raise."""
        ...


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _content_type(name: str) -> str:
    if name.endswith(".jsonl"):
        return "application/x-ndjson"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class S3Store:
    """S3 (or any S3-compatible store: AWS_ENDPOINT_URL) through boto3; credentials from
    boto3's usual chain. One attempt per `put` (the uploader owns retries); the object's size
    and the SHA-256 sent as its metadata are read back before it counts as stored."""

    def __init__(self, url: RecordingsUrl) -> None:
        self.url = url
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    retries={"mode": "standard", "total_max_attempts": 1},
                    connect_timeout=10,
                    read_timeout=REQUEST_TIMEOUT_S,
                )
                self._client = boto3.session.Session().client("s3", config=config)
            return self._client

    def put(self, path: Path, key: str) -> None:
        from boto3.s3.transfer import TransferConfig

        digest, size = _sha256(path)
        client = self._s3()
        client.upload_file(
            str(path),
            self.url.bucket,
            key,
            ExtraArgs={"Metadata": {"sha256": digest}, "ContentType": _content_type(path.name)},
            Config=TransferConfig(use_threads=False),  # this thread only: nothing left at exit
        )
        head = client.head_object(Bucket=self.url.bucket, Key=key)
        stored_digest = head.get("Metadata", {}).get("sha256")
        if head.get("ContentLength") != size or stored_digest != digest:
            raise UploadVerificationError(
                f"s3://{self.url.bucket}/{key}: stored {head.get('ContentLength')} bytes "
                f"(sha256 {stored_digest}), sent {size} (sha256 {digest})"
            )

    # Reading back (the operator console's call history): blocking, from a worker thread.

    def list_objects(self) -> list[StoredObject]:
        """Every object directly under the prefix."""
        prefix = self.url.key("")
        found = []
        pages = self._s3().get_paginator("list_objects_v2").paginate(
            Bucket=self.url.bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                key = str(item["Key"])
                etag = str(item.get("ETag", "")).strip('"')
                found.append(StoredObject(key, int(item.get("Size", 0)), etag))
        return found

    def read_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end) of object `key` (to its end when `end` is None)."""
        if end is not None and end <= start:
            return b""
        span = f"bytes={start}-{'' if end is None else end - 1}"
        answer = self._s3().get_object(Bucket=self.url.bucket, Key=key, Range=span)
        return bytes(answer["Body"].read())

    def download(self, key: str, target: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        self._s3().download_file(
            self.url.bucket, key, str(target), Config=TransferConfig(use_threads=False)
        )

    def local_path(self, key: str) -> Path | None:
        return None


class GcsStore:
    """Google Cloud Storage through google-cloud-storage (STORAGE_EMULATOR_HOST for an
    emulator); credentials from Application Default Credentials. The client checks the
    CRC32C (or MD5) of what the store received; the stored size is checked too."""

    def __init__(self, url: RecordingsUrl, project: str | None = None) -> None:
        self.url = url
        self._project = project
        self._bucket: Any = None
        self._lock = threading.Lock()

    def _gcs(self) -> Any:
        with self._lock:
            if self._bucket is None:
                from google.cloud import storage

                try:
                    client = storage.Client(project=self._project)
                except OSError:  # no project in the environment: object uploads need none
                    client = storage.Client(project="<none>")
                self._bucket = client.bucket(self.url.bucket)
            return self._bucket

    def put(self, path: Path, key: str) -> None:
        size = path.stat().st_size
        blob = self._gcs().blob(key)
        blob.upload_from_filename(
            str(path),
            content_type=_content_type(path.name),
            checksum="crc32c",  # raises DataCorruption when the store got other bytes
            retry=None,  # the uploader owns retries
            timeout=REQUEST_TIMEOUT_S,
        )
        if blob.size != size:
            raise UploadVerificationError(
                f"gs://{self.url.bucket}/{key}: stored {blob.size} bytes, sent {size}"
            )

    # Reading back (the operator console's call history): blocking, from a worker thread.

    def list_objects(self) -> list[StoredObject]:
        """Every object directly under the prefix."""
        bucket = self._gcs()
        blobs = bucket.client.list_blobs(
            bucket, prefix=self.url.key(""), delimiter="/", timeout=REQUEST_TIMEOUT_S
        )
        return [
            StoredObject(str(blob.name), int(blob.size or 0), str(blob.etag or blob.generation))
            for blob in blobs
        ]

    def read_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end) of object `key` (to its end when `end` is None)."""
        if end is not None and end <= start:
            return b""
        blob = self._gcs().blob(key)
        data = blob.download_as_bytes(
            start=start, end=None if end is None else end - 1, timeout=REQUEST_TIMEOUT_S
        )
        return bytes(data)

    def download(self, key: str, target: Path) -> None:
        self._gcs().blob(key).download_to_filename(str(target), timeout=REQUEST_TIMEOUT_S)

    def local_path(self, key: str) -> Path | None:
        return None


class FileStore:
    """A folder (a mounted volume): each file copied beside its target, synced, then renamed
    over it, so a half-copied file is never taken for a stored one; the copy is read back."""

    def __init__(self, url: RecordingsUrl) -> None:
        assert url.path is not None
        self.url = url
        self.root = url.path

    def put(self, path: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
        try:
            with path.open("rb") as source, partial.open("wb") as copy:
                shutil.copyfileobj(source, copy, 1024 * 1024)
                copy.flush()
                os.fsync(copy.fileno())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        if _sha256(target) != _sha256(path):
            raise UploadVerificationError(f"{target}: the copy differs from {path}")

    # Reading back (the operator console's call history): blocking, from a worker thread.

    def list_objects(self) -> list[StoredObject]:
        """Every file directly in the folder (copies still in progress left out)."""
        found = []
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            stat = entry.stat()
            found.append(StoredObject(entry.name, stat.st_size, f"{stat.st_mtime_ns:x}"))
        return found

    def read_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end) of file `key` (to its end when `end` is None)."""
        with (self.root / key).open("rb") as file:
            file.seek(start)
            return file.read() if end is None else file.read(max(0, end - start))

    def download(self, key: str, target: Path) -> None:
        shutil.copyfile(self.root / key, target)

    def local_path(self, key: str) -> Path | None:
        """The file itself: served as it is, never copied."""
        return self.root / key


def store_for(url: RecordingsUrl, *, project: str | None = None) -> ObjectStore:
    """The store RECORDINGS_URL names (its client library is imported on first use)."""
    if url.scheme == "gs":
        return GcsStore(url, project)
    if url.scheme == "s3":
        return S3Store(url)
    return FileStore(url)


# ------------------------------------------------------------------ the spool (worker thread)


@dataclass
class Manifest:
    """`.uploads/<stem>.json`: one finished recording and whether it is stored yet."""

    stem: str
    files: list[str]
    """The recording's file names (every `<stem>.*` when it was finished)."""
    call_sid: str | None = None
    complete: bool = True
    """False when the recording was stopped early (it is uploaded all the same)."""
    uploaded: bool = False


class Spool:
    """RECORDINGS_DIR seen as a spool: recordings and their manifests. Blocking; call it from a
    worker thread."""

    def __init__(self, directory: Path, *, keep_local: bool = False) -> None:
        self.directory = directory
        self.manifests = directory / MANIFEST_DIR
        self.keep_local = keep_local

    def _manifest_path(self, stem: str) -> Path:
        return self.manifests / f"{stem}.json"

    def files_of(self, stem: str) -> list[str]:
        """Every `<stem>.*` file (whatever suffixes the recorder writes)."""
        pattern = glob.escape(stem) + ".*"
        return sorted(p.name for p in self.directory.glob(pattern) if p.is_file())

    def admit(self, stem: str, *, complete: bool = True) -> Manifest:
        """A finished recording: its manifest, written (atomically) so it is uploaded even
        after a restart."""
        manifest = Manifest(
            stem=stem,
            files=self.files_of(stem),
            call_sid=_call_sid_of(self.directory / f"{stem}.jsonl"),
            complete=complete,
        )
        self._write(manifest)
        return manifest

    def read(self, stem: str) -> Manifest | None:
        """The manifest of `stem`; None when there is none (already uploaded and removed).
        An unreadable one is rebuilt from the files (a recording is never skipped for it)."""
        path = self._manifest_path(stem)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Manifest(
                stem=str(data["stem"]),
                files=[str(name) for name in data["files"]],
                call_sid=data.get("call_sid"),
                complete=bool(data.get("complete", True)),
                uploaded=bool(data.get("uploaded", False)),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("recording_upload_manifest_unreadable", recording=stem, error=repr(exc))
            return self.admit(stem)

    def pending(self) -> list[Manifest]:
        """Recordings waiting for upload, oldest first. Clean-up of ones already uploaded
        (a crash between the upload and the removal) is finished on the way."""
        if not self.manifests.is_dir():
            return []
        waiting = []
        for path in sorted(self.manifests.glob("*.json")):
            manifest = self.read(path.name.removesuffix(".json"))
            if manifest is None:
                continue
            if manifest.uploaded:
                self.clean_up(manifest)
            else:
                waiting.append(manifest)
        return waiting

    def mark_uploaded(self, manifest: Manifest) -> None:
        manifest.uploaded = True
        self._write(manifest)

    def clean_up(self, manifest: Manifest) -> None:
        """After a verified upload: the spool copies go, then the manifest (unless kept)."""
        if self.keep_local:
            return
        for name in manifest.files:
            (self.directory / name).unlink(missing_ok=True)
        self._manifest_path(manifest.stem).unlink(missing_ok=True)

    def _write(self, manifest: Manifest) -> None:
        self.manifests.mkdir(parents=True, exist_ok=True)
        path = self._manifest_path(manifest.stem)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(asdict(manifest)), encoding="utf-8")
        os.replace(partial, path)


def _call_sid_of(jsonl: Path) -> str | None:
    """The call's id from the recording's `call_started` line (for logs), if it has one."""
    try:
        with jsonl.open(encoding="utf-8") as file:
            read = 0
            for line in file:
                read += len(line)
                if '"call_started"' in line:
                    sid = json.loads(line).get("call_sid")
                    return sid if isinstance(sid, str) else None
                if read > _CALL_STARTED_SCAN_BYTES:
                    break
    except (OSError, ValueError):
        pass
    return None


# ------------------------------------------------------------------ metrics


class UploadMetrics:
    """The uploader's metrics, in the app's registry (GET /metrics)."""

    OK: Final = "ok"
    """A recording's files all stored and verified."""
    FAILED: Final = "failed"
    """An attempt failed; the recording stays in the spool and is retried."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.uploads = Counter(
            "gateway_recording_uploads",
            "Recording uploads to RECORDINGS_URL, by outcome: ok (stored and verified), "
            "failed (an attempt failed; it is retried).",
            ["outcome"], registry=registry,
        )
        self.pending = Gauge(
            "gateway_recording_uploads_pending",
            "Finished recordings in the spool waiting for their upload.", registry=registry,
        )
        for outcome in (self.OK, self.FAILED):
            self.uploads.labels(outcome=outcome)


# ------------------------------------------------------------------ the uploader (event loop)


async def _in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a daemon thread of its own. Unlike `asyncio.to_thread` it never holds
    the process at exit (`asyncio.run` waits for the default executor's threads), so an upload
    stuck on a dead network cannot outlast RECORDINGS_UPLOAD_SHUTDOWN_S."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            deliver = functools.partial(_settle_error, future, exc)
        else:
            deliver = functools.partial(_settle, future, result)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=run, name="recording-upload", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[T], result: T) -> None:
    if not future.done():  # else its waiter was cancelled (shutdown)
        future.set_result(result)


def _settle_error(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class RecordingUploader:
    """Uploads finished recordings from the spool (see the module docstring). One task; the
    queue holds at most `max_queued` recordings (the rest wait in the spool)."""

    def __init__(
        self,
        spool: Spool,
        store: ObjectStore,
        *,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        max_queued: int = MAX_QUEUED_UPLOADS,
        metrics: UploadMetrics | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.spool = spool
        self.store = store
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_queued = max_queued
        self._metrics = metrics
        self._jitter = jitter
        self._queue: dict[str, str | None] = {}
        """stem → call id, in upload order (a dict: a recording is queued once)."""
        self._current: str | None = None
        self._rescan = True  # the first thing the task does: what the spool already holds
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._admitting: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._failures_in_a_row = 0
        self._attempts: dict[str, int] = {}
        self.uploaded: deque[str] = deque(maxlen=1000)
        """Stems of the last recordings this uploader stored, in order."""
        if metrics is not None:
            metrics.pending.set_function(self.pending_count)

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: UploadMetrics | None = None
    ) -> RecordingUploader:
        assert settings.recordings_url is not None
        url = parse_recordings_url(settings.recordings_url)
        return cls(
            Spool(settings.recordings_dir, keep_local=settings.recordings_keep_local),
            store_for(url, project=settings.google_cloud_project),
            backoff_s=settings.recordings_upload_backoff_s,
            max_backoff_s=settings.recordings_upload_max_backoff_s,
            metrics=metrics,
        )

    def pending_count(self) -> int:
        """Recordings queued or being uploaded now."""
        return len(self._queue) + (self._current is not None)

    def backoff(self, failures_in_a_row: int) -> float:
        """Seconds to wait after this many failures in a row: doubling from `backoff_s`,
        capped at `max_backoff_s`, then between half and all of it (jitter, so many gateways
        do not retry in step)."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0 ** max(0, failures_in_a_row - 1))
        return ceiling * (0.5 + 0.5 * self._jitter())

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the task; it first queues what the spool already holds (a restart resumes)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="recording-uploader"
            )
            log.info(
                "recording_uploads_started",
                store=str(self.store.url),
                spool=str(self.spool.directory),
            )

    async def wait_idle(self) -> None:
        """Until nothing is queued, being admitted or uploaded (tests; a store that stays down
        never gets there)."""
        await self._idle.wait()

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """At shutdown: up to `timeout_s` to finish what is queued, then stop; whatever is left
        stays in the spool for the next start."""
        task = self._task
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        task.cancel()
        for admitting in list(self._admitting):
            admitting.cancel()
        await asyncio.gather(task, *self._admitting, return_exceptions=True)
        self._task = None
        left = self.pending_count()
        if left:
            log.warning(
                "recording_uploads_left_in_spool",
                recordings=left,
                first=next(iter(self._queue), self._current),
                spool=str(self.spool.directory),
            )

    # ------------------------------------------------------------------ intake

    def recording_written(self, files: FinishedRecording) -> None:
        """`Recordings.on_written`: a recording is finished. Starts its admission (manifest
        written off the loop, then queued) and returns at once; never raises into the
        recorder."""
        stem = files.jsonl.name.removesuffix(".jsonl")
        try:
            self._idle.clear()
            task = asyncio.get_running_loop().create_task(
                self._admit(stem, files.complete), name=f"recording-upload-admit-{stem}"
            )
        except Exception as exc:  # e.g. no running loop
            log.error("recording_upload_not_queued", recording=stem, error=repr(exc))
            return
        self._admitting.add(task)
        task.add_done_callback(self._admitted)

    async def _admit(self, stem: str, complete: bool) -> None:
        try:
            manifest = await asyncio.to_thread(self.spool.admit, stem, complete=complete)
        except Exception as exc:
            # Without a manifest it is not uploaded (not even after a restart): say so loudly.
            log.error(
                "recording_upload_failed",
                recording=stem,
                stage="manifest",
                error=_clip(repr(exc)),
                spool=str(self.spool.directory),
            )
            return
        self._enqueue(stem, manifest.call_sid)

    def _admitted(self, task: asyncio.Task[None]) -> None:
        self._admitting.discard(task)
        self._wakeup.set()  # the task decides whether it is idle now

    def _enqueue(self, stem: str, call_sid: str | None) -> None:
        if stem in self._queue or stem == self._current:
            return
        if len(self._queue) >= self.max_queued:
            self._rescan = True  # its manifest is in the spool: picked up once the queue drains
        else:
            self._queue[stem] = call_sid
        self._idle.clear()
        self._wakeup.set()

    # ------------------------------------------------------------------ the task

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._rescan:
                    self._rescan = False
                    await self._scan()
                    continue
                if not self._admitting:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            stem = next(iter(self._queue))
            call_sid = self._queue.pop(stem)
            self._current = stem
            try:
                manifest = await _in_daemon_thread(self._upload, stem)
            except Exception as exc:
                self._current = None
                await self._failed(stem, call_sid, exc)
            else:
                self._current = None
                self._stored(stem, manifest)

    async def _scan(self) -> None:
        try:
            manifests = await _in_daemon_thread(self.spool.pending)
        except Exception as exc:
            delay = self._note_failure()
            log.error(
                "recording_upload_failed",
                stage="spool_scan",
                spool=str(self.spool.directory),
                error=_clip(repr(exc)),
                retry_in_s=round(delay, 3),
            )
            self._rescan = True
            await asyncio.sleep(delay)
            return
        if manifests:
            log.info("recording_uploads_resumed", recordings=len(manifests))
        for manifest in manifests:
            self._enqueue(manifest.stem, manifest.call_sid)

    def _upload(self, stem: str) -> Manifest | None:
        """Worker thread: every file of one recording, verified; then the spool cleaned."""
        manifest = self.spool.read(stem)
        if manifest is None:
            return None  # uploaded and removed already
        if not manifest.uploaded:
            for name in manifest.files:
                path = self.spool.directory / name
                if not path.is_file():
                    log.warning(
                        "recording_upload_file_missing",
                        recording=stem,
                        call_sid=manifest.call_sid,
                        file=name,
                    )
                    continue
                self.store.put(path, self.store.url.key(name))
            self.spool.mark_uploaded(manifest)
        self.spool.clean_up(manifest)
        return manifest

    def _note_failure(self) -> float:
        self._failures_in_a_row += 1
        if self._metrics is not None:
            self._metrics.uploads.labels(outcome=UploadMetrics.FAILED).inc()
        return self.backoff(self._failures_in_a_row)

    async def _failed(self, stem: str, call_sid: str | None, exc: Exception) -> None:
        attempt = self._attempts[stem] = self._attempts.get(stem, 0) + 1
        delay = self._note_failure()
        log.warning(
            "recording_upload_failed",
            recording=stem,
            call_sid=call_sid,
            attempt=attempt,
            store=str(self.store.url),
            error=_clip(repr(exc)),
            retry_in_s=round(delay, 6),
        )
        self._enqueue(stem, call_sid)  # to the back: one bad recording holds up no other
        await asyncio.sleep(delay)

    def _stored(self, stem: str, manifest: Manifest | None) -> None:
        self._failures_in_a_row = 0
        attempts = self._attempts.pop(stem, 0) + 1
        if manifest is None:
            return
        self.uploaded.append(stem)
        if self._metrics is not None:
            self._metrics.uploads.labels(outcome=UploadMetrics.OK).inc()
        log.info(
            "recording_uploaded",
            recording=stem,
            call_sid=manifest.call_sid,
            files=len(manifest.files),
            store=str(self.store.url),
            attempts=attempts,
            kept_local=self.spool.keep_local,
        )


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


UPLOADER = web.AppKey("recording_uploader", RecordingUploader)


def add_uploader(app: web.Application, settings: Settings) -> RecordingUploader:
    """RECORDINGS_URL: the app's uploader (app[UPLOADER]), started with the app and stopped at
    cleanup with RECORDINGS_UPLOAD_SHUTDOWN_S to finish. Feed it with `recording_written`
    (`Recordings.on_written`); register it after the recorder's own cleanup, so the last
    recordings of a shutdown are queued before it stops."""
    metrics = UploadMetrics(app[METRICS].registry) if METRICS in app else None
    uploader = RecordingUploader.from_settings(settings, metrics)
    app[UPLOADER] = uploader

    async def start(_: web.Application) -> None:
        await uploader.start()

    async def stop(_: web.Application) -> None:
        await uploader.aclose(settings.recordings_upload_shutdown_s)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return uploader
