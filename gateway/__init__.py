"""Telephony voice-agent gateway: carrier media streams bridged to Gemini Live."""

from importlib import metadata


def gateway_version() -> str:
    """The installed package's version (`gateway --version`, recordings' metadata)."""
    try:
        return metadata.version("gateway")
    except metadata.PackageNotFoundError:
        return "unknown"
