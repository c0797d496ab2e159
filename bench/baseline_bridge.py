"""A Twilio ⇄ Gemini Live bridge written the way the public sample apps write it: the yardstick
for bench/latency.py and bench/capacity.py. Not part of the gateway; never use it for calls.

What the samples do, and so does this: `websockets` on both sides, the `json` module, base64,
`audioop.ulaw2lin` / `lin2ulaw` and `audioop.ratecv` (no anti-alias filter), one asyncio task
per direction, each Live audio message converted and sent to Twilio as one `media` message, and
on `interrupted` a `clear` — no outbound queue, no marks, no resumption, no observers.

    .venv/bin/python bench/baseline_bridge.py --port 8081 --live-url ws://127.0.0.1:9090/live
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import warnings
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

LIVE_INPUT_RATE_HZ = 16000
"""Caller audio to Live: 16 kHz, Live's documented input rate and the gateway's default
(LIVE_INPUT_RATE_HZ), so both bridges resample and send the same amount of audio."""
LIVE_OUTPUT_RATE_HZ = 24000
"""Agent audio from Live is always 24 kHz."""
TWILIO_RATE_HZ = 8000
MODEL = "models/gemini-3.8-live"
"""The gateway's default LIVE_MODEL (gateway.live.models.DEFAULT_MODEL)."""


def setup_message() -> dict[str, Any]:
    return {
        "setup": {
            "model": MODEL,
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "realtimeInputConfig": {"activityHandling": "START_OF_ACTIVITY_INTERRUPTS"},
        }
    }


async def handle_call(twilio: ServerConnection, live_url: str) -> None:
    """One call: open Live, then pump both ways until either side ends."""
    stream_sid = None
    async with connect(live_url) as live:
        await live.send(json.dumps(setup_message()))
        await live.recv()  # setupComplete

        async def twilio_to_live() -> None:
            nonlocal stream_sid
            state = None
            async for message in twilio:
                data = json.loads(message)
                if data["event"] == "start":
                    stream_sid = data["start"]["streamSid"]
                elif data["event"] == "media":
                    mulaw = base64.b64decode(data["media"]["payload"])
                    pcm = audioop.ulaw2lin(mulaw, 2)
                    pcm, state = audioop.ratecv(
                        pcm, 2, 1, TWILIO_RATE_HZ, LIVE_INPUT_RATE_HZ, state
                    )
                    await live.send(
                        json.dumps(
                            {
                                "realtimeInput": {
                                    "audio": {
                                        "data": base64.b64encode(pcm).decode("utf-8"),
                                        "mimeType": f"audio/pcm;rate={LIVE_INPUT_RATE_HZ}",
                                    }
                                }
                            }
                        )
                    )
                elif data["event"] == "stop":
                    return

        async def live_to_twilio() -> None:
            state = None
            async for message in live:
                data = json.loads(message)
                content = data.get("serverContent", {})
                if content.get("interrupted"):
                    await twilio.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
                for part in content.get("modelTurn", {}).get("parts", []):
                    inline = part.get("inlineData")
                    if inline and inline.get("mimeType", "").startswith("audio/pcm"):
                        pcm = base64.b64decode(inline["data"])
                        pcm, state = audioop.ratecv(
                            pcm, 2, 1, LIVE_OUTPUT_RATE_HZ, TWILIO_RATE_HZ, state
                        )
                        payload = base64.b64encode(audioop.lin2ulaw(pcm, 2)).decode("utf-8")
                        await twilio.send(
                            json.dumps(
                                {
                                    "event": "media",
                                    "streamSid": stream_sid,
                                    "media": {"payload": payload},
                                }
                            )
                        )

        tasks = [asyncio.create_task(twilio_to_live()), asyncio.create_task(live_to_twilio())]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve_baseline(host: str, port: int, live_url: str) -> Server:
    """Start the bridge; Twilio connects to ws://host:port/ (any path)."""

    async def handler(twilio: ServerConnection) -> None:
        await handle_call(twilio, live_url)

    return await serve(handler, host, port)


async def _main(host: str, port: int, live_url: str) -> None:
    server = await serve_baseline(host, port, live_url)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--live-url", required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.host, args.port, args.live_url))
