"""Who may call in, and how hard: Twilio signatures, an Account SID allow-list, call limits.

The endpoint is on the public internet. With `TWILIO_AUTH_TOKEN` set, `POST /twiml` and the
`/media` upgrade must carry a valid `X-Twilio-Signature` computed against `PUBLIC_URL` (what
Twilio called, not what a proxy forwarded). `GuardedTransport` rate-limits a call's frames and
checks the stream's `start.accountSid` before the call acts on anything; `AudioBudget` holds
the caller's audio to real time (Live bills by the second). Secrets (the token,
signatures) are never logged: failures log the reason and the URL only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from twilio.request_validator import RequestValidator

from gateway.call.ports import CallerTransport
from gateway.ops.logs import clip
from gateway.security.call_binding import BindingRefused, CallBinder
from gateway.telephony.base import MediaStreamCodec, StreamStart, TelephonyProtocolError

__all__ = [
    "ABUSE_AFTER_S",
    "BURST_S",
    "SIGNATURE_HEADER",
    "AudioBudget",
    "CallSlots",
    "GuardedTransport",
    "SignatureCheck",
    "TokenBucket",
]

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
BURST_S = 2.0
"""A call may send this many seconds' worth of frames at once (Twilio catching up after a
network stall) before the rate limit bites."""
ABUSE_AFTER_S = 5.0
"""A call whose dropped frames add up to this many seconds' worth is flooding: it is ended."""
DROP_LOG_EVERY = 500
"""Log dropped frames at the first and then every this many, not per frame."""


class SignatureCheck:
    """X-Twilio-Signature validation against the configured public URL (disabled without a
    token). `check` returns None when the request may pass, else why not."""

    def __init__(self, auth_token: str | None) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None

    @property
    def enabled(self) -> bool:
        return self._validator is not None

    def check(self, url: str, params: Mapping[str, Any], signature: str | None) -> str | None:
        """`url` is the full URL Twilio requested (query included); `params` the POST form."""
        if self._validator is None:
            return None
        if not signature:
            return "missing_signature"
        if not self._validator.validate(url, params, signature):
            return "invalid_signature"
        return None


class CallSlots:
    """Counts calls being served so excess ones are turned away (limit 0: no limit).

    `try_acquire` and `release` are synchronous, so a check and its reservation happen in one
    event-loop step: two upgrades racing cannot both take the last slot.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    @property
    def full(self) -> bool:
        return self.limit > 0 and self.in_use >= self.limit

    def try_acquire(self) -> bool:
        if self.full:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use = max(0, self.in_use - 1)


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up; `take()` spends one if it can."""

    def __init__(
        self, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class GuardedTransport:
    """A `CallerTransport` that enforces per-call limits before the call sees a frame.

    * frames beyond `max_frames_per_s` (burst BURST_S worth) are dropped with a log line; a
      call whose drops reach ABUSE_AFTER_S worth is ended (`receive` returns None);
    * with a `binder` (gateway.security.call_binding), a `start` whose call identity `/twiml`
      did not issue (binding missing, forged, expired or used before) ends the stream before
      the call starts, so what the call acts on (its SIDs, agent, numbers) is what we issued;
    * with an allow-list, a `start` from another Account SID ends the stream likewise.
    Only frames before `start` are parsed here, so the hot path stays a pass-through.
    """

    def __init__(
        self,
        inner: CallerTransport,
        codec: MediaStreamCodec,
        *,
        max_frames_per_s: float = 0.0,
        account_sids: frozenset[str] = frozenset(),
        binder: CallBinder | None = None,
    ) -> None:
        self._inner = inner
        self._codec = codec
        self._bucket = (
            TokenBucket(max_frames_per_s, max(1.0, max_frames_per_s * BURST_S))
            if max_frames_per_s > 0
            else None
        )
        self._abuse_limit = max_frames_per_s * ABUSE_AFTER_S
        self._account_sids = account_sids
        self._binder = binder
        self._started = not account_sids and binder is None
        self.frames_dropped = 0
        self.rejected: str | None = None
        """Why the guard ended the stream (`account_not_allowed`, `frame_flood`,
        `binding_<reason>`), if it did."""

    async def receive(self) -> str | bytes | None:
        if self.rejected is not None:
            return None
        while True:
            frame = await self._inner.receive()
            if frame is None:
                return None
            if self._bucket is not None and not self._bucket.take():
                self.frames_dropped += 1
                if self.frames_dropped == 1 or self.frames_dropped % DROP_LOG_EVERY == 0:
                    log.warning("carrier_frames_dropped", frames_dropped=self.frames_dropped)
                if self.frames_dropped >= self._abuse_limit:
                    self.rejected = "frame_flood"
                    log.warning("carrier_flood_ended_call", frames_dropped=self.frames_dropped)
                    return None
                continue
            if not self._started and not self._allowed(frame):
                return None
            return frame

    def _allowed(self, frame: str | bytes) -> bool:
        try:
            event = self._codec.parse(frame)
        except TelephonyProtocolError:
            return True  # the call reports malformed frames itself
        if not isinstance(event, StreamStart):
            return True
        self._started = True
        if self._binder is not None:
            bound = self._binder.verify(event.call_sid, event.account_sid, event.custom_parameters)
            if isinstance(bound, BindingRefused):
                self.rejected = f"binding_{bound.reason}"
        if self.rejected is None and (
            not self._account_sids or event.account_sid in self._account_sids
        ):
            return True
        self.rejected = self.rejected or "account_not_allowed"
        log.warning(
            "stream_rejected",
            reason=self.rejected,
            account_sid=clip(event.account_sid),
            call_sid=clip(event.call_sid),
        )
        return False

    async def send(self, frame: str | bytes) -> None:
        await self._inner.send(frame)

    def send_now(self, frames: Sequence[str | bytes]) -> bool:
        return self._inner.send_now(frames)

    async def close(self) -> None:
        if self.frames_dropped:
            log.info("carrier_frames_dropped_total", frames_dropped=self.frames_dropped)
        await self._inner.close()


class AudioBudget:
    """Caller audio may reach Live at most `speed` times real time (MAX_CALLER_AUDIO_SPEED),
    plus a burst of `burst_s` saved up (Twilio catching up after a network stall).

    Counts seconds of audio (samples), not messages: one message can carry any amount, and
    Live bills by the second. `take` runs for every caller frame (50 a second per call): one
    clock read and a little arithmetic. Audio refused adds to `dropped_s`; once that reaches
    `flood_after_s` the caller is `flooding` and the call ends it. `clock` is injectable.
    """

    def __init__(
        self,
        rate_hz: int = 8000,
        *,
        speed: float = 1.0,
        burst_s: float = BURST_S,
        flood_after_s: float = ABUSE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_hz = rate_hz
        self._samples_per_s = speed * rate_hz
        self.burst_s = burst_s
        self.flood_after_s = flood_after_s
        self._clock = clock
        self._burst_samples = burst_s * rate_hz
        self._credit = self._burst_samples
        """Samples that may still pass now (whole numbers while the clock stands still)."""
        self._at = clock()
        self.chunks_dropped = 0
        self.samples_dropped = 0

    def take(self, samples: int) -> bool:
        """Whether `samples` of audio (at `rate_hz`) may go on to Live now."""
        now = self._clock()
        credit = self._credit + (now - self._at) * self._samples_per_s
        if credit > self._burst_samples:
            credit = self._burst_samples
        self._at = now
        if credit + 0.5 >= samples:  # half a sample of slack for float clock arithmetic
            self._credit = credit - samples
            return True
        self._credit = credit
        self.chunks_dropped += 1
        self.samples_dropped += samples
        return False

    @property
    def dropped_s(self) -> float:
        return self.samples_dropped / self.rate_hz

    @property
    def flooding(self) -> bool:
        return self.samples_dropped >= self.flood_after_s * self.rate_hz

    @property
    def log_due(self) -> bool:
        """Worth a log line: the first drop, then every DROP_LOG_EVERY-th."""
        return self.chunks_dropped == 1 or self.chunks_dropped % DROP_LOG_EVERY == 0
