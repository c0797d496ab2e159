"""Logging set-up: structlog, JSON lines in production, pretty on a terminal.

Every line of a call carries `call_sid`, `stream_sid` and `agent`: `gateway.call.bridge` binds
them on its logger and, for the duration of the call, in structlog's context variables, so lines
logged by other modules (the Live client, observers, libraries using stdlib `logging`) on behalf of
the call carry them too. Stdlib log records go through the same renderer, so production output
is JSON throughout. Prometheus metrics live in `gateway.ops.metrics`.

Strings a caller chose (stream parameters, SIDs, event names, parser errors) go into log fields
through `clip`, so no caller can write kilobyte lines or forge line breaks.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, overload

import structlog

_HANDLER_MARK = "_gateway_log_handler"

MAX_LOGGED_CHARS: Final = 120
"""Longest caller-supplied string `clip` lets into a log field (a SID is 34, a number ~16)."""


@overload
def clip(text: str, limit: int = MAX_LOGGED_CHARS) -> str: ...


@overload
def clip(text: None, limit: int = MAX_LOGGED_CHARS) -> None: ...


def clip(text: str | None, limit: int = MAX_LOGGED_CHARS) -> str | None:
    """`text` as a log field: cut to `limit` chars (noting the full length), control and other
    unprintable characters escaped. For every string a caller chose; None passes through."""
    if text is None:
        return None
    cut = text[:limit]
    if not cut.isprintable():
        cut = cut.encode("unicode_escape").decode("ascii")
    if len(text) <= limit and len(cut) <= limit:
        return cut
    return f"{cut[:limit]}… ({len(text)} chars)"


class _CurrentStderr:
    """A file that writes to whatever `sys.stderr` is at write time (test capture swaps it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's PrintLogger with a `name`, so `add_logger_name` can say which module spoke."""

    def __init__(self, name: str) -> None:
        super().__init__(file=_CurrentStderr())  # type: ignore[arg-type]
        self.name = name


def _logger_factory(*args: Any) -> _NamedPrintLogger:
    return _NamedPrintLogger(str(args[0]) if args else "gateway")


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Route structlog and stdlib logging to stderr; `json=None` picks by whether it is a tty.

    Safe to call again (tests, the `call` command): loggers are not cached, so the new
    configuration applies to every logger from then on.
    """
    if json is None:
        json = not sys.stderr.isatty()
    numeric_level = logging.getLevelName(level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    exceptions: structlog.types.Processor = (
        structlog.processors.format_exc_info if json else structlog.dev.set_exc_info
    )
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(numeric_level, shared, [exceptions, renderer])


def _route_stdlib_logging(
    level: int, shared: list[structlog.types.Processor], final: list[structlog.types.Processor]
) -> None:
    """Render stdlib records (aiohttp, websockets, …) like structlog's, on the same stream."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
