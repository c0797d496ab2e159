"""The Asterisk side of a chan_websocket call, simulated (sans-IO; a `CarrierPhone`).

Asterisk dials the stream itself (no voice webhook): `stream_url` is what its
`websocket_client.conf` `uri` plus the dial string's `v()` parameters make, the token in the
query. Frames are chan_websocket's, in either control form (`plain-text`, the default, or
`json`), as `channels/chan_websocket.c` builds them: `MEDIA_START` with the channel's name,
uniqueid, format and 20 ms frame size; `DTMF_END digit:5 channel_id:…`;
`MEDIA_MARK_PROCESSED <id>`; media as raw BINARY messages. A hang-up is the socket closing,
not a frame: `stop()` says so.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlencode

from gateway.telephony.asterisk import FORMATS, TOKEN_PARAMETER
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder

__all__ = ["AsteriskPhone"]

_CALLS: Final = itertools.count(1)


class AsteriskPhone:
    """One call Asterisk streams to the gateway, with `token` (ASTERISK_STREAM_TOKEN) in the
    stream URL when given."""

    carrier: Final = "asterisk"

    def __init__(
        self,
        token: str | None = None,
        *,
        control_format: Literal["plain-text", "json"] = "plain-text",
        audio_format: Literal["ulaw", "slin", "slin16"] = "ulaw",
        connection_id: str = "gateway",
    ) -> None:
        self.token = token
        self.control_format = control_format
        self.audio_format = FORMATS[audio_format]
        self.connection_id = connection_id
        number = next(_CALLS)
        self.call_id = f"{int(time.time())}.{number}"
        """The WebSocket channel's uniqueid (`channel_id`)."""
        self.channel = f"WebSocket/{connection_id}/0x{0x5140001A0000 + number:x}"

    @property
    def stream_format(self) -> tuple[str, int]:
        """The dial string's `c(...)` format: ulaw, slin (8 kHz) or slin16."""
        return self.audio_format.encoding, self.audio_format.rate_hz

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        raise NotImplementedError(
            "Asterisk has no voice webhook: the dialplan dials the stream itself "
            "(Dial(WebSocket/…)); open AsteriskPhone.stream_url(...) instead"
        )

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        raise NotImplementedError(
            "Asterisk reads no webhook answer: the stream URL and its parameters come from "
            "websocket_client.conf and the dial string's v() option"
        )

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        """`url` (our /asterisk/media) with `parameters` and the token in the query, as
        Asterisk requests it."""
        query = {**parameters, **({TOKEN_PARAMETER: self.token} if self.token else {})}
        return f"{url}?{urlencode(query)}" if query else url

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return {}  # the token rides in the URL (websocket_client.conf's uri)

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        """`MEDIA_START` (`parameters` travel in the URL, not in frames: see `stream_url`)."""
        audio = self.audio_format
        if self.control_format == "json":
            return [
                _dump(
                    {
                        "event": "MEDIA_START",
                        "connection_id": self.connection_id,
                        "channel": self.channel,
                        "channel_id": self.call_id,
                        "format": audio.name,
                        "optimal_frame_size": audio.frame_bytes,
                        "ptime": 20,
                        "channel_variables": {
                            "MEDIA_WEBSOCKET_CONNECTION_ID": self.connection_id,
                            "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": str(audio.frame_bytes),
                        },
                    }
                )
            ]
        return [
            f"MEDIA_START connection_id:{self.connection_id} channel:{self.channel} "
            f"channel_id:{self.call_id} format:{audio.name} "
            f"optimal_frame_size:{audio.frame_bytes} ptime:20"
        ]

    def media(self, audio: bytes) -> str | bytes:
        """20 ms of caller audio as one BINARY message (160 bytes of μ-law for `ulaw`)."""
        return bytes(audio)

    def dtmf(self, digit: str) -> str | bytes:
        if self.control_format == "json":
            return _dump({"event": "DTMF_END", "channel_id": self.call_id, "digit": digit})
        return f"DTMF_END digit:{digit} channel_id:{self.call_id}"

    def mark_played(self, name: str) -> str | bytes:
        if self.control_format == "json":
            return _dump(
                {
                    "event": "MEDIA_MARK_PROCESSED",
                    "channel_id": self.call_id,
                    "correlation_id": name,
                }
            )
        return f"MEDIA_MARK_PROCESSED {name}"

    def stop(self) -> str | bytes:
        raise NotImplementedError(
            "Asterisk hangs up by closing the WebSocket (status 1000), it sends no frame: "
            "close the socket instead"
        )

    def read(self, frame: str | bytes) -> PhoneEvent:
        if isinstance(frame, bytes):
            return PhoneEvent("media", audio=frame)
        text = frame.strip()
        command, name = _command(text)
        if command == "MARK_MEDIA":
            return PhoneEvent("mark", name=name)
        if command == "FLUSH_MEDIA":
            return PhoneEvent("clear")
        return PhoneEvent("other")


def _command(text: str) -> tuple[str, str]:
    """A command and its correlation id, in either control form."""
    if text.startswith("{"):
        try:
            message = json.loads(text)
        except ValueError:
            return "", ""
        if not isinstance(message, dict):
            return "", ""
        return str(message.get("command", "")), str(message.get("correlation_id", ""))
    command, _, rest = text.partition(" ")
    return command, rest.strip()


def _dump(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
