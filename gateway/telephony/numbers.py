"""Phone numbers as carriers and the outbound API take them: E.164 with 7 to 15 digits.

One definition for everything that checks a caller, callee or caller id (Plivo's `<Dial>`,
Asterisk transfers, `POST /calls`, campaigns, OUTBOUND_FROM_NUMBER); the OpenAPI document
publishes the same pattern. (Agents' `lines` and transfer targets keep the looser check of
`gateway.tools.spec.E164`, which YAML written before accepts.)
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["E164", "E164_PATTERN"]

E164_PATTERN: Final = r"\+[1-9][0-9]{6,14}"
"""`+`, a non-zero digit, then 6 to 14 more digits (use with `fullmatch`)."""
E164: Final = re.compile(E164_PATTERN)
