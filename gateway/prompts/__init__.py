"""Prompts bundled with the gateway: 8 kHz μ-law audio played to the caller as-is.

Recorded once (see README.md beside this file) rather than synthesised at run time, so a call
that has lost Live — the only time a prompt is needed — depends on nothing but a file.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["APOLOGY", "PROMPT_RATE_HZ", "load_prompt_mulaw", "prompt_duration_s"]

PROMPT_RATE_HZ = 8000
"""Prompts are 8 kHz μ-law, mono, headerless: one byte per sample."""
APOLOGY = "apology"
"""'Sorry, we're having technical trouble. Please call back later. Goodbye.'"""


@cache
def load_prompt_mulaw(name: str) -> bytes:
    """The μ-law bytes of prompt `name` (`gateway/prompts/{name}.ulaw`), read once.

    Raises FileNotFoundError naming the file when the package was installed without it.
    """
    return resources.files(__package__).joinpath(f"{name}.ulaw").read_bytes()


def prompt_duration_s(mulaw: bytes) -> float:
    return len(mulaw) / PROMPT_RATE_HZ
