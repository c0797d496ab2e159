"""Twilio media-stream frames for tests: the gateway's own phone-side builder."""

from gateway.telephony.twilio_caller import ACCOUNT_SID, CALL_SID, STREAM_SID, TwilioCaller

__all__ = ["ACCOUNT_SID", "CALL_SID", "STREAM_SID", "TwilioCaller"]
