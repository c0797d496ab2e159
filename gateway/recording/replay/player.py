"""Replay a recorded call through a gateway and check it still does the same thing.

`gateway replay FILE.jsonl [--speed N] [--against recorded|emulator] [--url ws://…/media]`

The recorded caller side (`twilio_in` frames) is fed to a gateway — in-process on loopback, or
a running one — while the Live side is either played back from the recording (`recorded`) or
the Live emulator scripted with the recorded model's words (`emulator`). What the gateway sends
to Twilio and to Live is compared with the recording (see `compare`); any difference is
printed and the exit code is 1.

Determinism comes from causal pacing, not sleeps: the recording is one ordered log, so before
injecting an input (a caller frame, a Live message, a close) the replayer waits until the
gateway has sent as many frames to Twilio and messages to Live as it had by that point of the
recorded call. `--speed N` additionally keeps the recorded timing, N times faster (0 = no
waiting beyond causality, the default).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web

from gateway.agents.config import AgentConfigError, AgentSet, load_agents
from gateway.audio.codec import MULAW_ENCODING, MULAW_RATE_HZ
from gateway.live.auth import fixed_token_provider
from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.live.models import Backend, bare_model_id
from gateway.live.resilient import ResilientLiveConnector
from gateway.recording.format import (
    EventKind,
    RecordedEvent,
    Recording,
    RecordingFormatError,
    read_recording,
)
from gateway.recording.recorder import RECORDINGS, Recordings
from gateway.recording.replay.compare import (
    OutputItem,
    StreamDiff,
    Tolerance,
    carrier_item,
    compare_stream,
    live_item,
    live_item_from_wire,
)
from gateway.recording.replay.live import LiveSide
from gateway.recording.replay.script import script_from_recording
from gateway.settings import Settings, SettingsError, load_settings

__all__ = [
    "Action",
    "Against",
    "ReplayError",
    "ReplayOptions",
    "ReplayReport",
    "Step",
    "add_replay_arguments",
    "build_plan",
    "recorded_outputs",
    "replay_recording",
    "run_replay_command",
]

DEFAULT_STALL_TIMEOUT_S: Final = 10.0
EMULATOR_SPEED: Final = 100.0
"""The emulator streams replies this much faster than real time during a replay."""
_CALLER_ENDS = frozenset({"caller_hung_up"})
_LIVE_ENDS = {"live_closed": 1000, "live_failed": 1011}


EMULATOR_BURST_FRAMES: Final = 10
"""Frames of agent audio that may already be on their way when a replayed caller hangs up
mid-reply against the emulator (it answers faster than real time, in bursts)."""


_CALLER_ENDED: Final = frozenset({"caller_hung_up", "caller_disconnected"})


class Against(StrEnum):
    RECORDED = "recorded"
    EMULATOR = "emulator"


class ReplayError(Exception):
    """The replay cannot run (bad file, missing agent, bad options); not a mismatch."""


@dataclass(frozen=True)
class ReplayOptions:
    against: Against = Against.RECORDED
    speed: float = 0.0
    """Keep recorded timing N times faster; 0 = as fast as causality allows."""
    url: str | None = None
    """A running gateway's media-stream URL; None runs one in-process."""
    live_port: int | None = None
    """With `url`: serve the Live side on 127.0.0.1:PORT (the gateway's LIVE_URL points here)."""
    tolerance: Tolerance = field(default_factory=Tolerance)
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    """How long to wait for the gateway to send what the recording says it sent next."""
    record_to: Path | None = None
    """In-process only: record the replayed call into this directory (to refresh a fixture)."""


# --------------------------------------------------------------------------- the plan


class Action(StrEnum):
    CALLER_FRAME = "caller_frame"
    LIVE_MESSAGE = "live_message"
    CLOSE_LIVE = "close_live"
    HANG_UP = "hang_up"


@dataclass(frozen=True)
class Step:
    """Inject `event` once the gateway has sent `twilio_out` frames and `live_out` messages.

    `session` is the Live connection the event belongs to (0, then one more per reconnect).
    """

    action: Action
    event: RecordedEvent | None
    twilio_out: int
    live_out: int
    session: int = 0
    close_code: int = 1000


def build_plan(recording: Recording, against: Against) -> list[Step]:
    """The inputs of the recorded call, each with the outputs that preceded it."""
    steps: list[Step] = []
    twilio_out = live_out = 0
    at_last_input = (0, 0)
    session = 0
    live_closed = False
    refused = _live_refused(recording)
    for event in recording.events:
        kind = event.kind
        if kind == EventKind.TWILIO_OUT:
            twilio_out += 1
        elif kind == EventKind.LIVE_OUT:
            live_out += 1
        elif kind == EventKind.TWILIO_IN:
            steps.append(Step(Action.CALLER_FRAME, event, twilio_out, live_out, session))
            at_last_input = (twilio_out, live_out)
        elif kind == EventKind.LIVE_IN and against is Against.RECORDED:
            steps.append(Step(Action.LIVE_MESSAGE, event, twilio_out, live_out, session))
            at_last_input = (twilio_out, live_out)
        elif kind == EventKind.LIVE_CLOSED and not refused:
            code = _close_code(event.data.get("code"), 1000)
            steps.append(Step(Action.CLOSE_LIVE, event, twilio_out, live_out, session, code))
            live_closed = True
        elif kind == EventKind.LIVE_RECONNECTED:
            # A drop (close code) is ours to cause; a planned switch (after goAway, no code)
            # the gateway makes by itself. Later messages belong to the new session.
            if event.data.get("close_code") is not None:
                close = _close_code(event.data.get("close_code"), 1011)
                steps.append(Step(Action.CLOSE_LIVE, event, twilio_out, live_out, session, close))
            session += 1
    reason = recording.end_reason
    if reason in _LIVE_ENDS and not live_closed and not refused:
        # Recorded without `live_closed` events: close after the last input; what the gateway
        # sent after it (its final flush) follows the close either way.
        close = _LIVE_ENDS[reason]
        steps.append(Step(Action.CLOSE_LIVE, None, *at_last_input, session, close))
    elif reason not in _CALLER_ENDS and reason not in _LIVE_ENDS:
        # The caller went away, or the recording does not say how the call ended: hang up
        # once the gateway has sent everything it sent in the recording.
        steps.append(Step(Action.HANG_UP, None, twilio_out, live_out, session))
    return steps


def _live_refused(recording: Recording) -> bool:
    """The recorded call never got a Live session: the replay's Live side refuses it too."""
    return any(
        event.kind == EventKind.ERROR and event.data.get("error") == "live_connect_failed"
        for event in recording.events
    )


def _resume_refusal(recording: Recording) -> dict[str, int]:
    """A call whose Live side failed for good (`live_failed`: every resumption refused) gets a
    Live side that serves its recorded sessions and refuses any more, with the recorded code."""
    if recording.end_reason != "live_failed":
        return {}
    sessions = 1 + sum(
        1 for e in recording.events if e.kind == EventKind.LIVE_RECONNECTED
    )
    codes = [e.data.get("code") for e in recording.of_kind(EventKind.LIVE_CLOSED)]
    code = next((c for c in reversed(codes) if c in (1007, 1008)), 1008)
    return {"max_sessions": sessions, "refusal_code": int(str(code))}


def _close_code(code: object, default: int = 1000) -> int:
    return code if isinstance(code, int) and 1000 <= code <= 4999 else default


def recording_carrier(recording: Recording) -> str:
    """The carrier a recording was made on (recordings before carriers: Twilio)."""
    carrier = recording.metadata.get("carrier")
    return carrier if isinstance(carrier, str) and carrier else "twilio"


def recording_stream_format(recording: Recording) -> tuple[str, int]:
    """(encoding, rate) of the recorded stream's audio (older recordings: μ-law at 8 kHz)."""
    meta = recording.metadata
    encoding, rate_hz = meta.get("encoding"), meta.get("sample_rate_hz")
    if isinstance(encoding, str) and isinstance(rate_hz, int):
        return encoding, rate_hz
    return MULAW_ENCODING, MULAW_RATE_HZ


def recorded_outputs(recording: Recording) -> tuple[list[OutputItem], list[OutputItem]]:
    """What the recorded gateway sent: (to Twilio, to Live)."""
    twilio: list[OutputItem] = []
    live: list[OutputItem] = []
    carrier = recording_carrier(recording)
    stream_format = recording_stream_format(recording)
    for event in recording.events:
        if event.kind == EventKind.TWILIO_OUT:
            twilio.append(carrier_item(event.frame(), carrier, stream_format))
        elif event.kind == EventKind.LIVE_OUT:
            rate_hz = int(event.data.get("rate_hz") or 0)
            if "audio_energy" in event.data:  # format 2: the samples and their loudness
                samples, sum_squares = event.data["audio_energy"]
                energy = (int(samples), float(sum_squares))
                live.append(OutputItem("audio", energy=energy, rate_hz=rate_hz))
            elif "audio" in event.data:
                pcm = base64.b64decode(event.data["audio"])
                live.append(OutputItem("audio", pcm16=pcm, rate_hz=rate_hz))
            else:
                live.append(live_item(event.data["message"]))
    return twilio, live


# --------------------------------------------------------------------------- the report


@dataclass
class ReplayReport:
    recording: Recording
    options: ReplayOptions
    twilio_out: list[OutputItem] = field(default_factory=list)
    live_out: list[OutputItem] | None = None
    """None when the Live side was not ours to observe (a running gateway's own Live)."""
    diffs: list[StreamDiff] = field(default_factory=list)
    stalled: str | None = None
    """What the replay was waiting for when the gateway stopped making progress."""
    elapsed_s: float = 0.0
    recorded_to: list[Path] = field(default_factory=list)
    """With `record_to`: the new recording(s) of the replayed call."""

    @property
    def ok(self) -> bool:
        return not self.diffs and self.stalled is None

    def render(self) -> str:
        name = self.recording.path.name
        verdict = "OK" if self.ok else "MISMATCH"
        lines = [
            f"replay {name} against {self.options.against.value}: {verdict} "
            f"({self.elapsed_s:.2f} s)"
        ]
        expected_twilio, expected_live = recorded_outputs(self.recording)
        lines.append(
            f"  twilio_out: {len(self.twilio_out)} events (recorded {len(expected_twilio)})"
        )
        if self.live_out is None:
            lines.append("  live_out: not observed (the gateway's own Live side)")
        else:
            lines.append(f"  live_out: {len(self.live_out)} events (recorded {len(expected_live)})")
        if not self.recording.complete:
            lines.append("  note: the recording is incomplete (no call_ended); replayed all of it")
        if self.stalled:
            lines.append(f"  stalled: {self.stalled}")
        lines.extend(diff.render() for diff in self.diffs)
        lines.extend(f"  recorded the replay to {path}" for path in self.recorded_to)
        return "\n".join(lines)


# --------------------------------------------------------------------------- the replay


class _Progress:
    """Counts of what the gateway sent, and a way to wait for them (event-driven)."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def bump(self) -> None:
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True


class _Caller:
    """The Twilio side: sends recorded frames, keeps every frame the gateway sends back."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, progress: _Progress) -> None:
        self.ws = ws
        self.received: list[str | bytes] = []
        self.closed = asyncio.Event()
        self._progress = progress
        self._reader = asyncio.create_task(self._read(), name="replay-caller-reader")

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self.received.append(str(message.data))
                elif message.type is aiohttp.WSMsgType.BINARY:
                    self.received.append(bytes(message.data))
                self._progress.bump()
        finally:
            self.closed.set()
            self._progress.bump()

    async def send(self, frame: str | bytes) -> None:
        if self.ws.closed:
            return  # the gateway already ended the call; what it sent is compared later
        with contextlib.suppress(ConnectionError):
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)

    async def aclose(self) -> None:
        await self.ws.close()
        await self._reader


async def replay_recording(
    recording: Recording,
    options: ReplayOptions | None = None,
    *,
    agents: AgentSet | None = None,
    settings: Settings | None = None,
) -> ReplayReport:
    """Replay `recording` and compare. In-process runs need `agents` (or settings.agents_dir).

    Raises ReplayError when the replay cannot run; a mismatch is a report with `ok` False.
    """
    options = options or ReplayOptions()
    if options.url is not None and options.against is Against.RECORDED and not options.live_port:
        raise ReplayError(
            "--against recorded with --url needs --live-port PORT, and the gateway's LIVE_URL "
            "set to ws://127.0.0.1:PORT, so that the recorded Live side can answer it"
        )
    started = time.monotonic()
    report = ReplayReport(recording, options)
    progress = _Progress()
    observe_live = options.url is None or options.live_port is not None
    emulator: LiveEmulator | None = None
    upstream: str | None = None
    if options.against is Against.EMULATOR and observe_live:
        emulator = LiveEmulator(script_from_recording(recording), speed=EMULATOR_SPEED)
        upstream = await emulator.start("127.0.0.1", 0)
    live = LiveSide(
        upstream,
        on_change=progress.bump,
        refuse_setup=_live_refused(recording),
        **_resume_refusal(recording),
    )
    try:
        if observe_live:
            await live.start("127.0.0.1", options.live_port or 0)
        async with contextlib.AsyncExitStack() as stack:
            gateway: _InProcessGateway | None = None
            if options.url is not None:
                media_url = options.url
            else:
                gateway = await stack.enter_async_context(
                    _in_process_gateway(recording, live.url, agents, settings, options)
                )
                media_url = gateway.url
            session = await stack.enter_async_context(aiohttp.ClientSession())
            ws = await session.ws_connect(media_url, max_msg_size=0)
            caller = _Caller(ws, progress)
            try:
                live_observed = live if observe_live else None
                await _drive(recording, options, caller, live_observed, progress, report)
            finally:
                await caller.aclose()
            carrier = recording_carrier(recording)
            stream_format = recording_stream_format(recording)
            report.twilio_out = [
                carrier_item(frame, carrier, stream_format) for frame in caller.received
            ]
            if gateway is not None and options.record_to:
                await gateway.recordings.wait_idle()
                report.recorded_to = [files.jsonl for files in gateway.recordings.written]
    finally:
        await live.stop()
        if emulator is not None:
            await emulator.stop()
    if observe_live:
        report.live_out = [live_item_from_wire(frame) for frame in live.client_frames]
    expected_twilio, expected_live = recorded_outputs(recording)
    carrier_tolerance = options.tolerance
    if options.against is Against.EMULATOR and recording.end_reason in _CALLER_ENDED:
        # The emulator answers faster than real time: when the caller hangs up mid-reply, the
        # frames already on their way are up to a burst more (or less) than recorded.
        frames = max(options.tolerance.frames, EMULATOR_BURST_FRAMES)
        carrier_tolerance = replace(options.tolerance, frames=frames)
    diff = compare_stream("twilio_out", expected_twilio, report.twilio_out, carrier_tolerance)
    if diff is not None:
        report.diffs.append(diff)
    if report.live_out is not None:
        diff = compare_stream("live_out", expected_live, report.live_out, options.tolerance)
        if diff is not None:
            report.diffs.append(diff)
    report.elapsed_s = time.monotonic() - started
    return report


async def _drive(
    recording: Recording,
    options: ReplayOptions,
    caller: _Caller,
    live: LiveSide | None,
    progress: _Progress,
    report: ReplayReport,
) -> None:
    """Inject every recorded input in order, each once the gateway has caught up with it."""
    began = time.monotonic()
    for step in build_plan(recording, options.against):
        def caught_up(step: Step = step) -> bool:
            if caller.closed.is_set():
                return True
            if len(caller.received) < step.twilio_out:
                return False
            return live is None or len(live.client_frames) >= step.live_out

        if not await progress.until(caught_up, options.stall_timeout_s):
            report.stalled = _stall_message(step, caller, live, options.stall_timeout_s)
            return
        if options.speed > 0 and step.event is not None:
            delay_s = began + step.event.t / options.speed - time.monotonic()
            if delay_s > 0:
                await asyncio.sleep(delay_s)  # pacing to recorded time, not synchronisation
        if caller.closed.is_set() and step.action is not Action.CLOSE_LIVE:
            break
        try:
            async with asyncio.timeout(options.stall_timeout_s):
                await _inject(step, caller, live)
        except TimeoutError:
            report.stalled = (
                f"the gateway never opened Live session {step.session} needed by "
                f"recorded event #{step.event.index if step.event else '(end)'}"
            )
            return
    if not await progress.until(caller.closed.is_set, options.stall_timeout_s):
        report.stalled = (
            f"the gateway did not end the call within {options.stall_timeout_s:g} s "
            f"after the last recorded input (recorded end: {recording.end_reason})"
        )


async def _inject(step: Step, caller: _Caller, live: LiveSide | None) -> None:
    if step.action is Action.CALLER_FRAME:
        assert step.event is not None
        await caller.send(step.event.frame())
    elif step.action is Action.HANG_UP:
        await caller.ws.close()
    elif live is None:
        return  # the running gateway's own Live side: nothing to inject
    elif step.action is Action.LIVE_MESSAGE:
        assert step.event is not None
        await live.send(step.event.data["message"], step.session)
    elif step.action is Action.CLOSE_LIVE:
        await live.close_session(step.session, step.close_code)


def _stall_message(step: Step, caller: _Caller, live: LiveSide | None, timeout_s: float) -> str:
    where = f"recorded event #{step.event.index}" if step.event else "the end of the call"
    waiting = [f"{len(caller.received)}/{step.twilio_out} twilio_out"]
    if live is not None:
        waiting.append(f"{len(live.client_frames)}/{step.live_out} live_out")
    return (
        f"no progress for {timeout_s:g} s before {where} ({step.action.value}): "
        f"the gateway had sent {', '.join(waiting)} of what the recording shows by then"
    )


@dataclass(frozen=True)
class _InProcessGateway:
    url: str
    recordings: Recordings


@contextlib.asynccontextmanager
async def _in_process_gateway(
    recording: Recording,
    live_url: str,
    agents: AgentSet | None,
    settings: Settings | None,
    options: ReplayOptions,
) -> AsyncIterator[_InProcessGateway]:
    """A gateway on 127.0.0.1 (any free port) whose Live is `live_url`."""
    from gateway.server import create_app
    from gateway.telephony.carriers import media_path, new_phone

    meta = recording.metadata
    # Tools' writable state starts empty: a replay never touches the real data.
    with tempfile.TemporaryDirectory(prefix="gateway-replay-") as data_dir:
        overrides: dict[str, Any] = {
            "live_backend": "emulator",
            "live_url": live_url,
            "host": "127.0.0.1",
            "port": 0,
            "public_url": None,
            "twilio_auth_token": None,
            "twilio_account_sids": None,
            # Every carrier's streams unsigned and unbound: the recorded frames carry bindings
            # of another process (and its keys).
            "telnyx_public_key": None,
            "telnyx_api_key": None,
            "plivo_auth_token": None,
            "signalwire_signing_key": None,
            "asterisk_stream_token": None,
            "max_carrier_frames_per_s": 0,  # a replay is faster than real time by design
            "max_caller_audio_speed": 0,
            "record_calls": "all" if options.record_to else "off",
            "recordings_url": None,  # a replay's recording stays in --record-to
            "data_dir": data_dir,
        }
        if options.record_to:
            overrides["recordings_dir"] = options.record_to
        if isinstance(meta.get("live_input_rate_hz"), int):
            overrides["live_input_rate_hz"] = meta["live_input_rate_hz"]
        # The same model generation and dialect as the recorded call: they decide the setup,
        # how text goes to Live and how tools behave.
        model = meta.get("live_model")
        if isinstance(model, str) and model:
            overrides["live_model"] = bare_model_id(model)
        vertex = meta.get("live_dialect") == Backend.VERTEX.value
        if vertex:
            overrides.update(live_backend="vertex", google_cloud_project=REPLAY_PROJECT)
        if settings is not None:
            overrides["agents_dir"] = settings.agents_dir
        try:
            replay_settings = load_settings(env_file=None, **overrides)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None
        agents = agents or _load_replay_agents(replay_settings.agents_dir)
        wanted = meta.get("agent")
        if isinstance(wanted, str) and agents.get(wanted) is None:
            raise ReplayError(
                f"the recording's agent {wanted!r} is not among the agents "
                f"({', '.join(sorted(agents.agents))}); pass --agents DIR"
            )
        connector = None
        if vertex:  # the loopback Live side checks no credentials
            connector = ResilientLiveConnector.from_settings(
                LiveConnector(replay_settings, token_provider=fixed_token_provider("replay")),
                replay_settings,
            )
        app = create_app(replay_settings, agents, connector)
        recordings = app[RECORDINGS]
        # A re-recording says which Live the call was originally made with.
        recordings.live_backend = meta.get("live_backend")
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
            carrier = recording_carrier(recording)
            url = f"ws://127.0.0.1:{port}{media_path(carrier)}"
            # Carriers that carry the call's context in the stream URL (Asterisk) get it there.
            params = meta.get("custom_parameters")
            if isinstance(params, dict):
                url = new_phone(carrier).stream_url(
                    url, {k: v for k, v in params.items() if isinstance(v, str)}
                )
            yield _InProcessGateway(url, recordings)
        finally:
            await runner.cleanup()


def _load_replay_agents(directory: Path) -> AgentSet:
    try:
        return load_agents(directory)
    except AgentConfigError as exc:
        raise ReplayError(f"cannot load the agents to replay with:\n{exc}") from None


REPLAY_PROJECT = "replay"
"""The project in the model path of a Vertex-dialect replay (the loopback Live side ignores it)."""


# --------------------------------------------------------------------------- command line


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="a recording (.jsonl or .jsonl.gz)")
    parser.add_argument(
        "--speed",
        type=float,
        metavar="N",
        default=0.0,
        help="keep the recorded timing N times faster (1 = real time); 0 (default) = as fast "
        "as the gateway answers",
    )
    parser.add_argument(
        "--against",
        choices=[a.value for a in Against],
        default=Against.RECORDED.value,
        help="the Live side: the recorded messages (default) or the emulator saying the "
        "recorded words",
    )
    parser.add_argument("--url", metavar="URL", help="a running gateway's media URL (ws://host:port/media)")
    parser.add_argument(
        "--live-port",
        type=int,
        metavar="PORT",
        help="with --url: serve the Live side on 127.0.0.1:PORT (set the gateway's LIVE_URL)",
    )
    parser.add_argument(
        "--agents",
        type=Path,
        metavar="DIR",
        help="agents to replay with (default: an agents/ folder beside FILE, else AGENTS_DIR)",
    )
    parser.add_argument(
        "--frames-tolerance",
        type=int,
        metavar="N",
        default=Tolerance.frames,
        help="audio frames a run may gain or lose (default %(default)s)",
    )
    parser.add_argument(
        "--rms-tolerance-db",
        type=float,
        metavar="DB",
        default=Tolerance.rms_db,
        help="loudness difference allowed per audio run in dB (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=DEFAULT_STALL_TIMEOUT_S,
        help="seconds to wait for the gateway before calling it stalled (default %(default)s)",
    )
    parser.add_argument(
        "--record-to",
        type=Path,
        metavar="DIR",
        help="record the replayed call into this directory (to refresh a recording)",
    )


def replay_agents_dir(recording: Path, given: Path | None, configured: Path) -> Path:
    """The agents a replay answers with: `--agents DIR`, else an `agents/` folder beside the
    recording (how fixtures keep theirs: `tests/recordings/agents`), else AGENTS_DIR."""
    if given is not None:
        return given
    beside = recording.parent / "agents"
    return beside if beside.is_dir() else configured


def run_replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """`gateway replay`: 0 when the replay matches, 1 on a mismatch, 2 when it cannot run."""
    if args.speed < 0:
        print("gateway replay: --speed must be >= 0", file=sys.stderr)
        return 2
    options = ReplayOptions(
        against=Against(args.against),
        speed=args.speed,
        url=args.url,
        live_port=args.live_port,
        tolerance=Tolerance(frames=args.frames_tolerance, rms_db=args.rms_tolerance_db),
        stall_timeout_s=args.timeout,
        record_to=args.record_to,
    )
    agents_dir = replay_agents_dir(args.file, args.agents, settings.agents_dir)
    if agents_dir != settings.agents_dir:
        print(f"gateway replay: agents from {agents_dir}", file=sys.stderr)
    settings = settings.model_copy(update={"agents_dir": agents_dir})
    try:
        recording = read_recording(args.file)
        report = asyncio.run(replay_recording(recording, options, settings=settings))
    except (RecordingFormatError, ReplayError) as exc:
        print(f"gateway replay: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gateway.recording.replay.player …` (same as `gateway replay …`)."""
    parser = argparse.ArgumentParser(prog="gateway replay")
    add_replay_arguments(parser)
    args = parser.parse_args(argv)
    return run_replay_command(args, load_settings())


if __name__ == "__main__":
    sys.exit(main())
