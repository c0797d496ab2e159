"""RECORDINGS_URL: finished recordings uploaded from the spool to a durable store, for real, to
emulators on loopback (moto's S3 server, gcp-storage-emulator) and to a folder (file://).

No sleeps: back-off values are tiny and injected (and the jitter pinned), and each test waits on
what it needs (the uploader idle, N failed attempts seen by the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.ops.metrics import METRICS
from gateway.recording.format import EventKind
from gateway.recording.recorder import RECORDINGS, RecordingFiles, RecordingSink
from gateway.recording.upload import (
    MANIFEST_DIR,
    UPLOADER,
    ObjectStore,
    RecordingUploader,
    Spool,
    store_for,
)
from gateway.server import create_app
from gateway.settings import SettingsError, load_settings, parse_recordings_url
from tests.gateway_harness import sample_agents
from tests.storage_emulators import PREFIX, StoreEmulator, make_store
from tests.twilio_frames import CALL_SID, TwilioCaller

SILENCE = bytes([0xFF]) * 160
STEM = f"20250101T000000Z-{CALL_SID}"
TINY_BACKOFF = {"backoff_s": 0.001, "max_backoff_s": 0.004, "jitter": lambda: 1.0}
"""Back-off doubling 1 → 2 → 4 ms and capped there; jitter pinned to the full delay."""
STORES = pytest.mark.parametrize("scheme", ["s3", "gs", "file"])


@pytest.fixture
def store(scheme: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StoreEmulator]:
    """The `scheme` store, down: the test brings it up with `store.up()`."""
    emulator = make_store(scheme, monkeypatch, tmp_path)
    try:
        yield emulator
    finally:
        emulator.close()


def parse(url: str) -> Any:
    return parse_recordings_url(url)


async def within(awaitable: Any, timeout_s: float = 20.0) -> Any:
    """A guard, not a synchronisation: a test that would hang fails with a clear error."""
    async with asyncio.timeout(timeout_s):
        return await awaitable


# ------------------------------------------------------------------ recordings and calls


class SideFileSink(RecordingSink):
    """The recorder plus one more file with a suffix the uploader has never heard of."""

    def finish(self, stopped_reason: str | None) -> RecordingFiles:
        files = super().finish(stopped_reason)
        files.jsonl.with_suffix(".frames.bin").write_bytes(bytes(range(256)) * 64)
        return files


def record(spool: Path, stem: str, call_sid: str = CALL_SID) -> RecordingSink:
    """A recording the recorder's sink has begun writing (not finished)."""
    caller = TwilioCaller(call_sid=call_sid)
    sink = RecordingSink(spool, stem)
    events: list[tuple[float, EventKind, Any]] = [
        (0.0, EventKind.TWILIO_IN, json.dumps(caller.connected())),
        (0.0, EventKind.TWILIO_IN, json.dumps(caller.start())),
        (0.001, EventKind.CALL_STARTED, {"call_sid": call_sid, "agent": "default"}),
    ]
    events += [
        (0.02 * i, EventKind.TWILIO_IN, json.dumps(caller.media(SILENCE))) for i in range(1, 50)
    ]
    sink.write(events)
    return sink


def recorded(spool: Path, stem: str, call_sid: str = CALL_SID) -> RecordingFiles:
    """A finished recording, as the recorder reports it."""
    sink = record(spool, stem, call_sid)
    sink.write([(1.0, EventKind.CALL_ENDED, {"reason": "caller_hung_up"})])
    return sink.finish(None)


def contents(spool: Path, stem: str) -> dict[str, bytes]:
    """What the store should hold for `stem`: key → bytes."""
    return {f"{PREFIX}/{p.name}": p.read_bytes() for p in sorted(spool.glob(stem + ".*"))}


def spool_is_empty(spool: Path) -> bool:
    leftovers = [p.name for p in spool.iterdir() if p.name != MANIFEST_DIR]
    return leftovers == [] and list((spool / MANIFEST_DIR).iterdir()) == []


class CountingStore:
    """A real store, with its failed attempts counted; `enough` is set (from the upload
    thread) once `wanted` attempts have failed."""

    def __init__(self, store: ObjectStore, wanted: int) -> None:
        self.store = store
        self.url = store.url
        self.wanted = wanted
        self.failures = 0
        self.puts = 0
        self.loop = asyncio.get_running_loop()
        self.enough = asyncio.Event()

    def put(self, path: Path, key: str) -> None:
        self.puts += 1
        try:
            self.store.put(path, key)
        except Exception:
            self.failures += 1
            if self.failures == self.wanted:
                self.loop.call_soon_threadsafe(self.enough.set)
            raise


@contextlib.asynccontextmanager
async def recording_gateway(spool: Path, url: str, **overrides: Any) -> AsyncIterator[
    tuple[TestClient[Any, Any], web.Application]
]:
    """The gateway on loopback, recording every call into `spool`, uploading to `url`."""
    emulator = LiveEmulator(speed=50.0)
    live_url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        env_file=None,
        live_backend="emulator",
        live_url=live_url,
        record_calls="all",
        recordings_dir=spool,
        recordings_url=url,
        recordings_upload_backoff_s=0.001,
        recordings_upload_max_backoff_s=0.004,
        **overrides,
    )
    app = create_app(settings, sample_agents(), LiveConnector(settings))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, app
    finally:
        await client.close()
        await emulator.stop()


async def phone_call(client: TestClient[Any, Any]) -> None:
    """A short call: start, half a second of silence, hang up; returns when the gateway has
    closed the stream (the call is over)."""
    caller = TwilioCaller()
    async with client.ws_connect("/media") as ws:
        await ws.send_json(caller.connected())
        await ws.send_json(caller.start(**{"from": "+15551230000", "to": "+15550001111"}))
        for _ in range(25):
            await ws.send_json(caller.media(SILENCE))
        await ws.send_json(caller.stop())
        async for _ in ws:
            pass


# ------------------------------------------------------------------ a call, end to end


@STORES
async def test_a_recorded_call_arrives_whole_under_the_prefix_and_leaves_the_spool(
    store: StoreEmulator, tmp_path: Path
) -> None:
    store.up()
    spool = tmp_path / "spool"
    written: dict[str, bytes] = {}

    def keep_what_was_written(files: RecordingFiles) -> None:  # before any upload began
        stem = files.jsonl.name.removesuffix(".jsonl")
        written.update(contents(spool, stem))

    with capture_logs() as logs:
        async with recording_gateway(spool, store.url) as (client, app):
            app[RECORDINGS].sink_factory = SideFileSink
            app[RECORDINGS].on_written.append(keep_what_was_written)
            await within(phone_call(client))
            await within(app[RECORDINGS].wait_idle())
            await within(app[UPLOADER].wait_idle())
            registry = app[METRICS].registry
            ok = registry.get_sample_value("gateway_recording_uploads_total", {"outcome": "ok"})
            failed = registry.get_sample_value(
                "gateway_recording_uploads_total", {"outcome": "failed"}
            )
            pending = registry.get_sample_value("gateway_recording_uploads_pending")

    suffixes = {key.split(".", 1)[1] for key in written}
    assert {"jsonl", "txt", "wav", "frames.bin"} <= suffixes  # whatever files the recorder wrote
    assert all(written.values())
    assert store.objects() == written  # every file, same bytes, under <prefix>/<name>
    assert spool_is_empty(spool)
    assert (ok, failed, pending) == (1.0, 0.0, 0.0)
    [uploaded] = [e for e in logs if e["event"] == "recording_uploaded"]
    assert uploaded["call_sid"] == CALL_SID and uploaded["files"] == len(written)
    assert uploaded["recording"].endswith(CALL_SID)


async def test_keep_local_leaves_the_spool_copy_and_never_uploads_it_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store("file", monkeypatch, tmp_path)
    store.up()
    spool = tmp_path / "spool"
    async with recording_gateway(spool, store.url, recordings_keep_local=True) as (client, app):
        await within(phone_call(client))
        await within(app[RECORDINGS].wait_idle())
        await within(app[UPLOADER].wait_idle())
        [stem] = list(app[UPLOADER].uploaded)
    assert store.objects() == contents(spool, stem)  # stored, and still in the spool
    manifest = json.loads((spool / MANIFEST_DIR / f"{stem}.json").read_text())
    assert manifest["uploaded"] is True and manifest["call_sid"] == CALL_SID
    again = RecordingUploader(Spool(spool, keep_local=True), store_for(parse(store.url)))
    await again.start()
    await within(again.wait_idle())
    await again.aclose()
    assert list(again.uploaded) == []


# ------------------------------------------------------------------ the store down


@STORES
async def test_the_store_down_for_a_while_loses_nothing(
    store: StoreEmulator, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    files = recorded(spool, STEM)
    expected = contents(spool, STEM)
    counting = CountingStore(store_for(parse(store.url)), wanted=3)
    uploader = RecordingUploader(Spool(spool), counting, **TINY_BACKOFF)
    with capture_logs() as logs:
        await uploader.start()
        uploader.recording_written(files)
        await within(counting.enough.wait())
        assert contents(spool, STEM) == expected  # nothing lost while the store is down
        assert list(uploader.uploaded) == []
        store.up()
        await within(uploader.wait_idle())
        await uploader.aclose()

    assert store.objects() == expected
    assert spool_is_empty(spool)
    assert list(uploader.uploaded) == [STEM]
    failures = [e for e in logs if e["event"] == "recording_upload_failed"]
    assert len(failures) >= 3 and len(failures) == counting.failures
    for failure in failures:  # each names the recording and the call
        assert (failure["recording"], failure["call_sid"]) == (STEM, CALL_SID)
        assert failure["error"] and failure["retry_in_s"] <= 0.004
    assert [f["attempt"] for f in failures] == list(range(1, len(failures) + 1))
    assert [f["retry_in_s"] for f in failures[:3]] == [0.001, 0.002, 0.004]  # doubling, capped
    [uploaded] = [e for e in logs if e["event"] == "recording_uploaded"]
    assert uploaded["attempts"] == len(failures) + 1


# ------------------------------------------------------------------ restarts


@STORES
async def test_a_restart_uploads_what_the_spool_holds_and_skips_what_is_being_written(
    store: StoreEmulator, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    # A first gateway finished a call but could not upload it before it stopped.
    files = recorded(spool, STEM)
    expected = contents(spool, STEM)
    counting = CountingStore(store_for(parse(store.url)), wanted=1)
    # A long back-off: after its failure it waits, so nothing of it runs on after its stop.
    first = RecordingUploader(Spool(spool), counting, backoff_s=60, max_backoff_s=60)
    with capture_logs() as logs:
        await first.start()
        first.recording_written(files)
        await within(counting.enough.wait())
        await first.aclose(timeout_s=0)
    assert [e["recordings"] for e in logs if e["event"] == "recording_uploads_left_in_spool"] == [1]
    manifest = json.loads((spool / MANIFEST_DIR / f"{STEM}.json").read_text())
    assert manifest["uploaded"] is False and manifest["call_sid"] == CALL_SID
    assert sorted(manifest["files"]) == sorted(key.rsplit("/", 1)[1] for key in expected)
    # …another one stopped between an upload and the spool's clean-up…
    done_stem = "20250101T000001Z-CA00000000000000000000000000000002"
    recorded(spool, done_stem, call_sid="CA00000000000000000000000000000002")
    Spool(spool).mark_uploaded(Spool(spool).admit(done_stem))
    # …and a call is still being recorded.
    live_stem = "20250101T000002Z-CA00000000000000000000000000000003"
    live = record(spool, live_stem, call_sid="CA00000000000000000000000000000003")
    being_written = contents(spool, live_stem)
    assert being_written

    store.up()
    async with recording_gateway(spool, store.url) as (_, app):
        uploader = app[UPLOADER]
        await within(uploader.wait_idle())  # the start-up scan, and what it queued
        assert list(uploader.uploaded) == [STEM]
        assert store.objects() == expected  # not the uploaded one again, not the live one
        assert contents(spool, done_stem) == {}  # its clean-up finished
        assert contents(spool, live_stem) == being_written  # untouched
        # The live recording is uploaded once the recorder reports it finished.
        files = live.finish(None)
        finished = contents(spool, live_stem)
        uploader.recording_written(files)
        await within(uploader.wait_idle())
        assert list(uploader.uploaded) == [STEM, live_stem]
    assert store.objects() == expected | finished
    assert spool_is_empty(spool)


async def test_shutdown_is_bounded_and_leaves_the_upload_in_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    files = recorded(spool, STEM)

    class HungStore:
        """A store whose upload does not return (a dead network) until the test ends."""

        url = parse("file:///unused")

        def __init__(self) -> None:
            self.loop = asyncio.get_running_loop()
            self.entered = asyncio.Event()
            self.release = threading.Event()

        def put(self, path: Path, key: str) -> None:
            self.loop.call_soon_threadsafe(self.entered.set)
            self.release.wait(timeout=60)
            raise ConnectionError("the network never came back")

    hung = HungStore()
    uploader = RecordingUploader(Spool(spool), hung, **TINY_BACKOFF)
    try:
        await uploader.start()
        uploader.recording_written(files)
        await within(hung.entered.wait())
        await within(uploader.aclose(timeout_s=0.01))  # returns although the upload hangs
        assert uploader.pending_count() == 1
        manifest = json.loads((spool / MANIFEST_DIR / f"{STEM}.json").read_text())
        assert manifest["uploaded"] is False
        assert files.jsonl.is_file() and files.wav.is_file() and files.txt.is_file()
    finally:
        hung.release.set()


# ------------------------------------------------------------------ policy and settings


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    spool, store = Spool(Path("/nonexistent")), store_for(parse("file:///unused"))
    high = RecordingUploader(spool, store, backoff_s=1, max_backoff_s=8, jitter=lambda: 1.0)
    low = RecordingUploader(spool, store, backoff_s=1, max_backoff_s=8, jitter=lambda: 0.0)
    assert [high.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert [low.backoff(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


@pytest.mark.parametrize(
    "url",
    ["http://bucket/x", "gs://", "s3:/bucket/x", "gs://Bucket/x", "file://relative/x", "bkt/x",
     "ftp://bucket"],
)
def test_a_bad_url_is_a_settings_error_naming_recordings_url(url: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(None, recordings_url=url)
    message = str(error.value)
    assert "RECORDINGS_URL: must be gs://BUCKET/PREFIX, s3://BUCKET/PREFIX or file:///PATH" in (
        message
    )
    assert "\n" not in message


def test_a_scheme_whose_library_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def without_boto3(name: str, package: str | None = None) -> Any:
        return None if name == "boto3" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_boto3)
    with pytest.raises(SettingsError, match=r"RECORDINGS_URL: s3:// needs boto3: pip install "
                       r"'gateway\[s3\]'"):
        load_settings(None, recordings_url="s3://bucket/prefix")
    assert load_settings(None, recordings_url="gs://bucket/prefix").recordings_url


def test_the_backoff_bounds_are_checked() -> None:
    with pytest.raises(SettingsError, match="RECORDINGS_UPLOAD_MAX_BACKOFF_S must be at least"):
        load_settings(None, recordings_upload_backoff_s=10, recordings_upload_max_backoff_s=1)
    with pytest.raises(SettingsError, match="RECORDINGS_UPLOAD_BACKOFF_S"):
        load_settings(None, recordings_upload_backoff_s=0)


def test_url_parts_make_the_object_names() -> None:
    url = parse("gs://calls-archive/prod/eu/")
    assert (url.bucket, url.prefix) == ("calls-archive", "prod/eu")
    assert url.key("a.wav") == "prod/eu/a.wav"
    assert parse("s3://calls-archive").key("a.wav") == "a.wav"
    assert parse("file:///mnt/archive/").path == Path("/mnt/archive")


def test_the_storage_libraries_are_not_imported_unless_an_upload_needs_them(
    tmp_path: Path,
) -> None:
    script = f"""
import sys
from gateway.server import create_app
from gateway.settings import load_settings
from tests.gateway_harness import sample_agents
for url in ("gs://bucket/p", "s3://bucket/p", "file://{tmp_path}/store"):
    create_app(load_settings(None, recordings_url=url, recordings_dir="{tmp_path}"),
               sample_agents())
print(sorted(m for m in ("boto3", "botocore", "google.cloud.storage") if m in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert result.stdout.strip() == "[]"
