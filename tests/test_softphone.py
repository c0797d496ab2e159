"""The softphone's server side (page, scripts, agent list), transcript frames, `gateway call`."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import sys
import tomllib
import wave
from pathlib import Path

import numpy as np
import pytest

from gateway.agents.config import AgentConfig, AgentSet
from gateway.audio.codec import MULAW_RATE_HZ
from gateway.settings import load_settings
from gateway.softphone.cli import (
    CallClientError,
    agent_has_greeting,
    call_in_process,
    mulaw_frames,
    place_call,
    read_wav_pcm16_8k,
    write_wav_pcm16_8k,
)
from gateway.softphone.page import SOFTPHONE_ASSETS, SOFTPHONE_SHARED_ASSETS
from gateway.telephony.carriers import PHONES
from gateway.telephony.transcript import build_transcript, wants_transcript
from tests.caller_audio import silence_frames, speech_frames
from tests.gateway_harness import loopback_gateway
from tests.test_integration import PhoneCall

REPO = Path(__file__).parent.parent
SPEECH_WAV = Path(__file__).parent / "data" / "softphone_speech.wav"


# ------------------------------------------------------------------ page, scripts, agents


async def test_the_page_and_its_scripts_are_served() -> None:
    async with loopback_gateway() as gateway:
        page = await gateway.client.get("/softphone")
        assert page.status == 200 and page.content_type == "text/html"
        html = await page.text()
        assert 'src="softphone/softphone.js"' in html and 'id="transcript"' in html
        for name in SOFTPHONE_ASSETS:
            asset = await gateway.client.get(f"/softphone/{name}")
            assert asset.status == 200, name
            assert asset.content_type == "text/javascript"
            assert len(await asset.read()) > 500
        # The console's stylesheet, shared, needs no console token.
        style = await gateway.client.get("/softphone/console.css")
        assert style.status == 200 and style.content_type == "text/css"
        assert 'href="softphone/console.css"' in html and "--caller" in await style.text()
        for bad in ("nope.js", "..%2fserver.py", "softphone.html", "index.html", "app.js"):
            assert (await gateway.client.get(f"/softphone/{bad}")).status == 404


def test_the_static_files_ship_in_the_package() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gateway.softphone"]
    static = REPO / "gateway" / "softphone" / "static"
    for name in [*SOFTPHONE_ASSETS, "softphone.html"]:
        assert (static / name).is_file()
        assert any(fnmatch.fnmatch(f"static/{name}", pattern) for pattern in patterns), name
    shared = pyproject["tool"]["setuptools"]["package-data"]
    for name, (package, _) in SOFTPHONE_SHARED_ASSETS.items():
        assert (REPO / package.replace(".", "/") / "static" / name).is_file()
        assert any(fnmatch.fnmatch(f"static/{name}", p) for p in shared[package]), name


async def test_the_agent_list_names_agents_and_says_which_greet() -> None:
    async with loopback_gateway() as gateway:
        listing = await (await gateway.client.get("/softphone/agents")).json()
    assert listing["default"] == "default"
    by_name = {agent["name"]: agent for agent in listing["agents"]}
    assert set(by_name) == {"default", "greeter"}
    assert by_name["greeter"]["greeting"] is True and by_name["default"]["greeting"] is False
    assert by_name["greeter"]["lines"] == ["+15550002222"]
    assert "system_instruction" not in by_name["default"]


# ------------------------------------------------------------------ transcript frames


def test_transcript_parameter() -> None:
    assert wants_transcript({"transcript": "1"}) and wants_transcript({"transcript": " True "})
    assert not wants_transcript({}) and not wants_transcript({"transcript": "0"})
    frame = json.loads(build_transcript("MZ1", "caller", "héllo"))
    assert frame == {"event": "transcript", "streamSid": "MZ1", "role": "caller", "text": "héllo"}


async def test_transcript_frames_only_when_the_stream_asks() -> None:
    async def one_call(**params: str) -> list[dict[str, object]]:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            await phone.start(agent="default", **params)
            await phone.say(speech_frames(600) + silence_frames(800))
            answer = await phone.until("mark")
            await phone.send(phone.twilio.stop())
            await phone.rest()
            return answer

    async with loopback_gateway() as gateway:
        plain = await one_call()
        with_text = await one_call(transcript="1")

    assert [m for m in plain if m["event"] == "transcript"] == []
    texts = [m for m in with_text if m["event"] == "transcript"]
    caller = "".join(str(m["text"]) for m in texts if m["role"] == "caller")
    agent = "".join(str(m["text"]) for m in texts if m["role"] == "agent")
    assert re.fullmatch(r"\(caller speech 0\.\d s\)", caller), caller
    assert agent == "You said something for 0.6 seconds. This is reply number 1."
    assert all(m["streamSid"] == texts[0]["streamSid"] for m in texts)


# ------------------------------------------------------------------ WAV in, WAV out


def write_wav(path: Path, samples: np.ndarray, rate_hz: int, channels: int = 1,
              width: int = 2) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate_hz)
        wav.writeframes(samples.tobytes())


@pytest.mark.parametrize(
    ("rate_hz", "channels", "width"), [(8000, 1, 2), (16000, 1, 2), (44100, 2, 2), (22050, 1, 1)]
)
def test_any_pcm_wav_becomes_8khz_mono(
    tmp_path: Path, rate_hz: int, channels: int, width: int
) -> None:
    t = np.arange(rate_hz) / rate_hz  # one second of 440 Hz at half scale
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    if width == 1:
        samples = np.round(tone * 127 + 128).astype(np.uint8)
    else:
        samples = np.round(tone * 32767).astype("<i2")
    if channels == 2:
        samples = np.repeat(samples, 2)
    path = tmp_path / "in.wav"
    write_wav(path, samples, rate_hz, channels, width)

    pcm16 = np.frombuffer(read_wav_pcm16_8k(path), dtype="<i2").astype(np.float64)
    assert abs(len(pcm16) - MULAW_RATE_HZ) <= 1
    middle = pcm16[800:-800] / 32768
    assert abs(np.sqrt(np.mean(middle**2)) - 0.5 / np.sqrt(2)) < 0.01  # level kept
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.argmax(spectrum) * MULAW_RATE_HZ / len(middle) - 440) < 2  # pitch kept


def test_bad_wav_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CallClientError, match="no such file"):
        read_wav_pcm16_8k(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not a wav")
    with pytest.raises(CallClientError, match="not a PCM WAV file"):
        read_wav_pcm16_8k(tmp_path / "text.wav")


def test_reply_wav_round_trip_and_framing(tmp_path: Path) -> None:
    pcm16 = (np.arange(500) * 37 % 2000 - 1000).astype("<i2").tobytes()
    write_wav_pcm16_8k(tmp_path / "out.wav", pcm16)
    with wave.open(str(tmp_path / "out.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.readframes(wav.getnframes()) == pcm16
    frames = mulaw_frames(pcm16)
    assert [len(frame) for frame in frames] == [160, 160, 160, 160]
    assert frames[-1][20:] == b"\xff" * 140  # padded with μ-law silence


# ------------------------------------------------------------------ gateway call


def speech_pcm16() -> bytes:
    return read_wav_pcm16_8k(SPEECH_WAV)


def loudness_dbfs(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    return float(20 * np.log10(max(np.sqrt(np.mean(samples**2)), 1e-9) / 32768))


async def test_call_in_process_gets_the_reply_and_its_transcript() -> None:
    settings = load_settings(env_file=None, live_backend="emulator", record_calls="off")
    agents = AgentSet.from_agents([AgentConfig(name="default")])
    result = await call_in_process(settings, agents, speech_pcm16(), agent="default")
    # The emulator's reply to ~1.5 s of speech lasts 70 ms per character of its text.
    (caller_role, caller), (agent_role, agent) = result.transcript
    assert (caller_role, agent_role) == ("caller", "agent")
    assert re.fullmatch(r"\(caller speech 1\.[56] s\)", caller), caller
    assert re.fullmatch(r"You said something for 1\.[56] seconds\. This is reply number 1\.", agent)
    assert result.reply_duration_s == pytest.approx(4.0, abs=0.05)
    assert -30 < loudness_dbfs(result.reply_pcm16) < -15
    assert result.greeting_pcm16 == b""


@pytest.mark.parametrize("carrier", sorted(PHONES))
async def test_gateway_call_speaks_every_carriers_protocol(carrier: str) -> None:
    """`gateway call --carrier NAME`: the same call, the same reply, over each carrier's
    media stream (`/{NAME}/media`, Twilio's `/media`)."""
    settings = load_settings(env_file=None, live_backend="emulator", record_calls="off")
    agents = AgentSet.from_agents([AgentConfig(name="default")])
    result = await call_in_process(
        settings, agents, speech_pcm16(), agent="default", carrier=carrier
    )
    assert result.reply_duration_s == pytest.approx(4.0, abs=0.05)
    assert [role for role, _ in result.transcript] == ["caller", "agent"]
    assert result.frames_sent > 50 and result.frames_received == 200


async def test_a_fast_call_in_process_is_not_cut_as_a_flood_under_default_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The suite's conftest lifts MAX_CALLER_AUDIO_SPEED for the gateways tests start; a user's
    # `gateway call` runs with the shipped default (1: real time), and fast mode sends its
    # WAV at once: the in-process gateway must not hold this one call to real time.
    monkeypatch.delenv("MAX_CALLER_AUDIO_SPEED", raising=False)
    settings = load_settings(env_file=None, live_backend="emulator", record_calls="off")
    assert settings.max_caller_audio_speed == 1.0
    agents = AgentSet.from_agents([AgentConfig(name="default")])
    result = await call_in_process(settings, agents, speech_pcm16(), agent="default")
    assert result.reply_duration_s > 1.0
    assert [role for role, _ in result.transcript] == ["caller", "agent"]


async def test_call_waits_for_the_greeting_then_records_only_the_reply() -> None:
    async with loopback_gateway() as gateway:
        url = f"ws://127.0.0.1:{gateway.port}/media"
        assert await agent_has_greeting(url, "greeter") is True
        assert await agent_has_greeting(url, "default") is False
        result = await place_call(url, speech_pcm16(), agent="greeter", wait_for_greeting=True)
    roles = [role for role, _ in result.transcript]
    assert roles == ["agent", "caller", "agent"]
    assert result.transcript[0][1] == "Welcome to Acme!"
    assert result.transcript[2][1].endswith("seconds. This is reply number 2.")
    assert len(result.greeting_pcm16) > 0.3 * 2 * MULAW_RATE_HZ
    assert result.reply_duration_s == pytest.approx(4.0, abs=0.05)


async def test_call_to_a_closed_port_is_a_clear_error() -> None:
    async with loopback_gateway() as gateway:
        port = gateway.port
    with pytest.raises(CallClientError, match="cannot call"):
        await place_call(f"ws://127.0.0.1:{port}/media", speech_pcm16(), timeout_s=5)


async def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVE_", "GEMINI_", "GOOGLE_"))}
    env["RECORD_CALLS"] = "off"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "call", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_gateway_call_command_in_process(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir()
    (agents_dir / "default.yaml").write_text("name: default\n")
    (agents_dir / "acme.yaml").write_text('name: acme\ngreeting: "Acme, hello."\n')
    out = tmp_path / "reply.wav"
    code, stdout, stderr = await run_cli(
        "--agent", "acme", "--say", str(SPEECH_WAV), "--out", str(out), cwd=tmp_path
    )
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "agent: Acme, hello."
    assert re.fullmatch(r"caller: \(caller speech 1\.[56] s\)", lines[1])
    assert re.fullmatch(r"agent: You said something for 1\.[56] seconds\. This is reply number 2\.",
                        lines[2])
    assert "reply: 4.00 s of audio" in stdout
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() == 4 * 8000


async def test_gateway_call_command_against_a_running_gateway(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    async with loopback_gateway() as gateway:
        code, stdout, stderr = await run_cli(
            "--url", f"ws://127.0.0.1:{gateway.port}/media", "--pace", "fast",
            "--say", str(SPEECH_WAV), "--out", str(out), cwd=tmp_path,
        )
    assert code == 0, stderr
    assert re.search(r"^agent: You said something for 1\.[56] seconds\. This is reply number 1\.$",
                     stdout, re.MULTILINE)
    assert out.stat().st_size > 2 * 8000


async def test_gateway_call_command_errors(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "default.yaml").write_text("name: default\n")
    code, _, stderr = await run_cli(
        "--agent", "nobody", "--say", str(SPEECH_WAV), "--out", "x.wav", cwd=tmp_path
    )
    assert code == 1 and "no agent named 'nobody'" in stderr
    code, _, stderr = await run_cli(
        "--say", str(tmp_path / "missing.wav"), "--out", "x.wav", cwd=tmp_path
    )
    assert code == 1 and "missing.wav: no such file" in stderr
    code, _, stderr = await run_cli(
        "--url", "http://example.invalid/media", "--say", str(SPEECH_WAV), "--out", "x.wav",
        cwd=tmp_path,
    )
    assert code == 1 and "--url must be a ws:// or wss://" in stderr
