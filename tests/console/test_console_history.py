"""The call history: search, filters, paging, a call in detail, downloads, the object store."""

from __future__ import annotations

import gzip
import shutil
import wave
from pathlib import Path

from gateway.console.routes import CONSOLE
from gateway.recording.upload import UPLOADER
from tests.console.backend_harness import (
    BEARER,
    FIXTURES,
    barge_in_call,
    console_gateway,
    copy_fixture,
    question_call,
)

FIXTURE_CALLS = ("question_answer", "barge_in", "tool_call", "dtmf", "hang_up_mid_reply")


async def test_search_filters_and_pages_newest_first(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    for name in FIXTURE_CALLS:
        copy_fixture(name, recordings)
    (recordings / "notes.txt").write_text("not a recording")
    (recordings / "broken.jsonl").write_text("{not json\n")
    async with console_gateway(tmp_path, record_calls="off") as gateway:
        everything = await gateway.get_json("/console/api/history")
        assert everything["total"] == len(FIXTURE_CALLS)
        assert everything["page"] == 1 and everything["page_size"] == 25
        items = everything["items"]
        started = [item["started_at"] for item in items]
        assert started == sorted(started, reverse=True)
        assert {item["id"] for item in items} == set(FIXTURE_CALLS)
        barge = next(item for item in items if item["id"] == "barge_in")
        assert barge == {
            "id": "barge_in",
            "call_sid": "CA00000000000000000000000000000002",
            "agent": "plain",
            "carrier": "twilio",
            "from": "+15551230000",
            "to": "+15550003333",
            "started_at": "2026-12-02T17:45:09Z",
            "duration_s": 6.064,
            "end_reason": "caller_hung_up",
        }

        async def ids(**params: str) -> list[str]:
            body = await gateway.get_json("/console/api/history", **params)
            return [item["id"] for item in body["items"]]

        assert await ids(q="CA00000000000000000000000000000002") == ["barge_in"]
        # Numbers match whatever their format: two calls were to +15550003333.
        assert set(await ids(q="+1 555 000 3333")) == {"barge_in", "hang_up_mid_reply"}
        assert await ids(q="(555) 000-4444") == ["tool_call"]
        assert set(await ids(q="+15551230000")) == set(FIXTURE_CALLS)
        assert await ids(q="nobody-at-all") == []
        assert await ids(agent="orders") == ["tool_call"]
        assert set(await ids(end_reason="caller_hung_up")) <= set(FIXTURE_CALLS)
        assert await ids(end_reason="max_duration") == []
        assert len(await ids(date_from="2026-12-02", date_to="2026-12-02")) == len(FIXTURE_CALLS)
        assert await ids(date_from="2026-12-03") == []
        assert await ids(date_to="2026-12-01") == []
        pages = [await ids(page=str(n), page_size="2") for n in (1, 2, 3, 4)]
        assert [len(p) for p in pages] == [2, 2, 1, 0]
        assert [i for p in pages for i in p] == [item["id"] for item in items]
        for bad in ({"page": "0"}, {"page_size": "500"}, {"page": "x"}, {"date_from": "yesterday"}):
            response = await gateway.client.get("/console/api/history", headers=BEARER, params=bad)
            assert response.status == 400, bad
        # Paging reads nothing again: the index is cached by file and size.
        index = gateway.client.app[CONSOLE].index
        reads = index.reads
        await ids(page="2", page_size="2")
        assert index.reads == reads


async def test_a_recorded_barge_in_in_detail(tmp_path: Path) -> None:
    copy_fixture("barge_in", tmp_path / "recordings")
    async with console_gateway(tmp_path, record_calls="off") as gateway:
        detail = await gateway.get_json("/console/api/history/barge_in")
        assert detail["call"]["id"] == "barge_in" and detail["duration_s"] == 6.064
        assert detail["meta"]["live_model"] == "gemini-3.8-live"
        assert detail["meta"]["custom_parameters"]["agent"] == "plain"
        kinds = [event["kind"] for event in detail["events"]]
        assert "barge_in" in kinds and "mark" in kinds
        barge = next(e for e in detail["events"] if e["kind"] == "barge_in")
        assert 2.5 < barge["t"] < 3.5 and "frames dropped" in barge["detail"]
        transcript = detail["transcript"]
        assert [line["role"] for line in transcript][:2] == ["caller", "agent"]
        assert any("clothing, shoes, books" in line["text"] for line in transcript)
        assert all(set(line) == {"t", "role", "text"} for line in transcript)
        assert detail["downloads"]["jsonl"] == "/console/api/history/barge_in/download/jsonl"
        assert detail["downloads"]["wav"] is None  # the fixture has no WAV
        assert detail["downloads"]["txt"] == "/console/api/history/barge_in/download/txt"
        assert detail["waveform"] == {"rate_hz": 50, "caller": [], "agent": []}
        assert detail["replay_command"] == (
            f"gateway replay {tmp_path / 'recordings' / 'barge_in.jsonl.gz'}"
        )
        await gateway.get_json("/console/api/history/nope", status=404)
        await gateway.get_json("/console/api/history/..%2fsecret", status=404)


async def test_tool_calls_and_keys_show_as_events(tmp_path: Path) -> None:
    copy_fixture("tool_call", tmp_path / "recordings")
    copy_fixture("dtmf", tmp_path / "recordings")
    async with console_gateway(tmp_path, record_calls="off") as gateway:
        tools = await gateway.get_json("/console/api/history/tool_call")
        kinds = [event["kind"] for event in tools["events"]]
        assert kinds.index("tool_call") < kinds.index("tool_result")
        call = next(e for e in tools["events"] if e["kind"] == "tool_call")
        assert call["detail"].startswith("lookup_order ") and "A1001" in call["detail"]
        result = next(e for e in tools["events"] if e["kind"] == "tool_result")
        assert result["detail"].startswith("lookup_order -> ok in ")
        keys = await gateway.get_json("/console/api/history/dtmf")
        assert any(e["kind"] == "dtmf" and "pressed" in e["detail"] for e in keys["events"])


async def test_a_real_call_has_a_waveform_downloads_and_playback(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway:
        await barge_in_call(gateway, 11, agent="default")
        await gateway.recordings_written()
        (item,) = (await gateway.get_json("/console/api/history"))["items"]
        assert item["call_sid"] == f"CA{11:032d}" and item["end_reason"] == "caller_hung_up"
        detail = await gateway.get_json(f"/console/api/history/{item['id']}")
        assert "barge_in" in [e["kind"] for e in detail["events"]]
        wave_data = detail["waveform"]
        assert wave_data["rate_hz"] == 50
        assert 0 < len(wave_data["caller"]) == len(wave_data["agent"]) <= 5000
        assert max(wave_data["caller"]) > 0.1 and max(wave_data["agent"]) > 0.01
        assert all(0 <= peak <= 1 for peak in wave_data["caller"] + wave_data["agent"])
        assert detail["downloads"]["wav"] and detail["downloads"]["audio"]
        directory = tmp_path / "recordings"
        for kind, suffix in (("jsonl", ".jsonl"), ("wav", ".wav"), ("txt", ".txt"),
                             ("audio", ".audio")):  # fmt: skip
            response = await gateway.client.get(detail["downloads"][kind], headers=BEARER)
            assert response.status == 200, kind
            name = f"{item['id']}{suffix}"
            assert response.headers["Content-Disposition"] == f'attachment; filename="{name}"'
            assert await response.read() == (directory / name).read_bytes()
        unknown = f"/console/api/history/{item['id']}/download/exe"
        assert (await gateway.client.get(unknown, headers=BEARER)).status == 404
        audio = await gateway.client.get(f"/console/api/history/{item['id']}/audio.wav",
                                         headers={**BEARER, "Range": "bytes=0-43"})  # fmt: skip
        assert audio.status == 206 and audio.headers["Content-Type"] == "audio/wav"
        assert (await audio.read())[:4] == b"RIFF"
        assert "Content-Disposition" not in audio.headers


async def test_long_calls_have_at_most_5000_points_a_lane(tmp_path: Path) -> None:
    from gateway.console.detail import waveform

    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x40\x00\x00" * 8000 * 250)  # 250 s: 12 500 points of 20 ms
    lanes = waveform(path)
    assert len(lanes["caller"]) <= 5000 and len(lanes["caller"]) >= 4000
    assert lanes["rate_hz"] < 50
    assert lanes["caller"][0] == 0.5 and lanes["agent"][0] == 0.0


async def test_history_comes_from_the_object_store_too(tmp_path: Path) -> None:
    """Behind a load balancer: calls another instance uploaded, and this one's own once they
    left the spool, are all in the history."""
    store = tmp_path / "store"
    store.mkdir()
    for name in ("barge_in", "tool_call"):  # as another instance uploaded them
        copy_fixture(name, store)
    async with console_gateway(tmp_path, recordings_url=f"file://{store}") as gateway:
        await question_call(gateway, 21, agent="default")
        await gateway.recordings_written()
        await gateway.client.app[UPLOADER].wait_idle()
        assert not list((tmp_path / "recordings").glob("*.jsonl"))  # the spool is empty
        listing = await gateway.get_json("/console/api/history")
        ids = [item["id"] for item in listing["items"]]
        assert listing["total"] == 3 and {"barge_in", "tool_call"} <= set(ids)
        ours = next(item for item in listing["items"] if item["call_sid"] == f"CA{21:032d}")
        detail = await gateway.get_json(f"/console/api/history/{ours['id']}")
        assert detail["waveform"]["caller"] and detail["downloads"]["wav"]
        assert detail["replay_command"] == f"gateway replay {store / (ours['id'] + '.jsonl')}"
        download = await gateway.client.get(detail["downloads"]["txt"], headers=BEARER)
        assert await download.read() == (store / f"{ours['id']}.txt").read_bytes()
        barge = await gateway.get_json("/console/api/history/barge_in")
        assert "barge_in" in [event["kind"] for event in barge["events"]]


async def test_a_store_without_local_files_is_read_through_the_cache(tmp_path: Path) -> None:
    """A bucket (here a folder posing as one): objects are read with ranged reads and
    fetched into the console's cache for details and downloads."""
    from gateway.console.detail import FileCache, recording_detail
    from gateway.console.history import HistoryQuery, RecordingIndex
    from gateway.recording.upload import FileStore
    from gateway.settings import parse_recordings_url

    class Bucket(FileStore):
        def local_path(self, key: str) -> Path | None:
            return None

    root = tmp_path / "bucket"
    root.mkdir()
    copy_fixture("barge_in", root)
    big = root / "big.jsonl"  # over the head + tail window: two ranged reads
    with gzip.open(FIXTURES / "question_answer.jsonl.gz", "rb") as source:
        shutil.copyfileobj(source, big.open("wb"))
    assert big.stat().st_size > 320 * 1024
    url = parse_recordings_url(f"file://{root}")
    store = Bucket(url)
    index = RecordingIndex(tmp_path / "no-spool", store)
    items, total = index.search(HistoryQuery(), 1, 10)
    assert total == 2 and {item["id"] for item in items} == {"barge_in", "big"}
    big_item = next(item for item in items if item["id"] == "big")
    assert big_item["end_reason"] == "caller_hung_up" and big_item["duration_s"]
    cache = FileCache(store)
    entry = index.entry("barge_in")
    assert entry is not None
    detail = recording_detail(entry, cache, url)
    assert "barge_in" in [event["kind"] for event in detail["events"]]
    cached = cache.path("barge_in", entry.files["jsonl"])
    assert cached != root / "barge_in.jsonl.gz"
    assert cached.read_bytes() == (root / "barge_in.jsonl.gz").read_bytes()
    cache.close()
    assert not cached.exists()
