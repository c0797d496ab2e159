"""Pipecat's Twilio bot on Gemini Live: a peer for bench/latency.py and bench/capacity.py.

Runs under the peer's own venv (bench/peers/.venv-pipecat, made by peer_env.py; the benches
make it on first use), never the gateway's:

    .venv/bin/python bench/peers/peer_env.py pipecat                # once; needs PyPI
    bench/peers/.venv-pipecat/bin/python bench/peers/pipecat_bridge.py \\
        --port 8082 --live-url ws://127.0.0.1:9090/live

    .venv/bin/python bench/latency.py --impls ours,baseline,pipecat --samples 50 --no-write

Written the way Pipecat's own Twilio examples write it (pipecat-ai 1.14): a FastAPI websocket
endpoint served by uvicorn that Twilio's media stream connects to (`/media`, like the other
bridges under test, and `/ws`, the examples' path); `parse_telephony_websocket` reads
Twilio's `connected` / `start`; `TwilioFrameSerializer` (auto hang-up off: it would need
Twilio REST credentials) inside `FastAPIWebsocketTransport`; the pipeline transport.input()
→ user context aggregator → `GeminiLiveLLMService` → transport.output() → assistant context
aggregator, on `PipelineWorker` / `WorkerRunner`; `LLMRunFrame` when the caller connects (the
agent greets), `cancel()` when the caller's socket closes. Pipeline audio at 8 kHz both ways
as Pipecat's Twilio examples set it (`audio_in_sample_rate` / `audio_out_sample_rate`): caller
audio goes to Live as 8 kHz PCM, one message per Twilio frame, and Live's 24 kHz audio is
resampled by the output transport (soxr, flushed at each turn's end). Pipecat's defaults
otherwise: model `models/gemini-3.8-live` (the gateway's default too), Gemini's own
server-side VAD, interruptions on (Live's `interrupted` → an interruption frame → the
serializer's `clear`), metrics on as in the examples. No local VAD, STT or TTS: Gemini Live
does all three. RTVI is off (`enable_rtvi=False`): it talks to web clients only, the Twilio
serializer drops every RTVI message, and Pipecat's Gemini phone example says to remove it for
phone calls.

The Live side: google-genai's client, as Pipecat builds it, with `http_options.base_url` at
the `--live-url` host (the path it dials is its own: /ws/google.ai.generativelanguage.v1beta
.GenerativeService.BidiGenerateContent, the real Developer API path, which the bench's Live
side serves). google-genai always dials `wss://`; for a `ws://` `--live-url` (the bench's
Live side is plain WebSocket for every bridge, so none of them pays TLS) the client Pipecat
creates is told the `ws://` base instead (`create_client`, the hook Pipecat documents for
subclasses). Everything on the wire — the setup message, the API-key header, realtime input,
what it accepts back — is google-genai's and Pipecat's own. A `wss://` URL is used as it is
(e.g. `--live-url wss://generativelanguage.googleapis.com` with GOOGLE_API_KEY set).

Harness protocol (bench/harness.py GatewayProcess): prints `PORT <n>` once listening, stops
when stdin closes (`--until-stdin-closes`), logs one JSON line per loguru record on stderr
(`level`, `event`) so the bench can count warnings and errors, and a `bench_gc` line at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI, WebSocket
from google.genai.types import HttpOptions
from loguru import logger
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/
from gc_pauses import GcPauses

SYSTEM_INSTRUCTION = "You are a friendly phone agent. Keep your answers short."
GREETING = "Greet the caller in one short sentence."
TWILIO_RATE_HZ = 8000
API_VERSION = "v1beta"
"""google-genai's default for the Developer API."""


def live_http_options(live_url: str) -> tuple[HttpOptions, str | None]:
    """google-genai options for `--live-url` and, for a ws:// URL, the ws:// base to dial."""
    parts = urlsplit(live_url)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.netloc:
        raise ValueError(f"--live-url must be ws(s)://host:port[/path], not {live_url!r}")
    secure = parts.scheme in ("wss", "https")
    base = f"{'https' if secure else 'http'}://{parts.netloc}"
    options = HttpOptions(base_url=base, api_version=API_VERSION)
    return options, None if secure else f"ws://{parts.netloc}"


def gemini_live(live_url: str) -> GeminiLiveLLMService:
    options, plain_ws_base = live_http_options(live_url)

    class Service(GeminiLiveLLMService):
        def create_client(self) -> None:
            super().create_client()
            if plain_ws_base is not None:  # google-genai would dial wss:// with a TLS context
                api = self._client._api_client
                api._websocket_base_url = lambda http_options=None: plain_ws_base
                api._websocket_ssl_ctx = {}

    return Service(
        api_key=os.environ.get("GOOGLE_API_KEY", "bench"),
        http_options=options,
        settings=GeminiLiveLLMService.Settings(system_instruction=SYSTEM_INSTRUCTION),
    )


async def run_call(websocket: WebSocket, live_url: str) -> None:
    """One Twilio call, the way Pipecat's Twilio examples run one."""
    _, call_data = await parse_telephony_websocket(websocket)
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    llm = gemini_live(live_url)
    context = LLMContext([{"role": "user", "content": GREETING}])
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(context)
    pipeline = Pipeline(
        [
            transport.input(),
            user_aggregator,
            llm,
            transport.output(),
            assistant_aggregator,
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=TWILIO_RATE_HZ,
            audio_out_sample_rate=TWILIO_RATE_HZ,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        enable_rtvi=False,
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False, force_gc=True)
    await runner.add_workers(worker)
    await runner.run()


def create_app(live_url: str) -> FastAPI:
    app = FastAPI()

    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await run_call(websocket, live_url)
        except Exception as exc:  # as the examples do: log, close, keep serving
            logger.exception(f"call failed: {exc!r}")
            await websocket.close()

    app.add_api_websocket_route("/media", media)
    app.add_api_websocket_route("/ws", media)
    return app


# ---------------------------------------------------------------------------- harness plumbing


def _json_sink(message: Any) -> None:
    record = message.record
    line = {
        "level": record["level"].name.lower(),
        "event": re.sub(r"#\d+", "#n", record["message"].split(":", 1)[0][:80]),  # per call
        "message": record["message"][:500],
        "where": f"{record['name']}:{record['line']}",
    }
    if record["exception"] is not None:
        line["exception"] = repr(record["exception"].value)
    sys.stderr.write(json.dumps(line) + "\n")


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


async def serve(host: str, port: int, live_url: str, until_stdin_closes: bool) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        create_app(live_url),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not server.started:
        ready.cancel()
        await serving  # raises what stopped it, if anything
        raise SystemExit("uvicorn did not start")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    if until_stdin_closes:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0: any free port")
    parser.add_argument("--live-url", required=True, help="ws://host:port/… of the Live side")
    parser.add_argument(
        "--until-stdin-closes", action="store_true", help="stop when stdin closes (the bench)"
    )
    args = parser.parse_args()
    live_http_options(args.live_url)  # a bad URL fails here, not in the first call
    logger.remove()
    logger.add(_json_sink, level=os.environ.get("BENCH_LOG_LEVEL", "info").upper())
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        asyncio.run(serve(args.host, args.port, args.live_url, args.until_stdin_closes))
    finally:
        pauses.report()


if __name__ == "__main__":
    main()
