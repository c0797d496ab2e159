"""The console's "at a glance" numbers: this process's metrics, and calls per hour.

Totals come from the app's Prometheus metrics (`gateway.ops.metrics`): reply latency
percentiles interpolated within the histogram's buckets (as PromQL's `histogram_quantile`),
barge-ins, tool errors (outcome `error` or `timeout`) and Live reconnects since the process
started. `HourlyCounts` is a call observer of its own that counts, per UTC hour, calls started,
barge-ins, tool errors and reconnects (48 hours kept); none of its hooks runs per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gateway.call.hooks import CallObserver, CallView
from gateway.live.protocol import FunctionResponse
from gateway.ops.metrics import GatewayMetrics

__all__ = ["HourlyCounts", "glance", "histogram_quantile"]

KEPT_HOURS: Final = 48
TOOL_ERROR_OUTCOMES: Final = frozenset({"error", "timeout"})


@dataclass
class _Hour:
    calls: int = 0
    barge_ins: int = 0
    tool_errors: int = 0
    reconnects: int = 0


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class HourlyCounts:
    """Counts per UTC hour; `observer()` makes one call's observer."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._hours: dict[datetime, _Hour] = {}

    def _now_hour(self) -> _Hour:
        hour = _hour_of(self._clock())
        bucket = self._hours.get(hour)
        if bucket is None:
            bucket = self._hours[hour] = _Hour()
            oldest = hour - timedelta(hours=KEPT_HOURS)
            for old in [h for h in self._hours if h <= oldest]:
                del self._hours[old]
        return bucket

    def observer(self, carrier: str = "") -> CallObserver:
        return _HourlyObserver(self)

    def count(self, field: str) -> None:
        bucket = self._now_hour()
        setattr(bucket, field, getattr(bucket, field) + 1)

    def last_24_hours(self) -> list[dict[str, Any]]:
        """The last 24 hours, oldest first, the current hour last."""
        now = _hour_of(self._clock())
        out = []
        for back in range(23, -1, -1):
            hour = now - timedelta(hours=back)
            bucket = self._hours.get(hour, _Hour())
            out.append(
                {
                    "hour": hour.isoformat().replace("+00:00", "Z"),
                    "calls": bucket.calls,
                    "barge_ins": bucket.barge_ins,
                    "tool_errors": bucket.tool_errors,
                    "reconnects": bucket.reconnects,
                }
            )
        return out

    def calls_today(self) -> int:
        """Calls started since midnight UTC."""
        midnight = _hour_of(self._clock()).replace(hour=0)
        return sum(bucket.calls for hour, bucket in self._hours.items() if hour >= midnight)


class _HourlyObserver(CallObserver):
    def __init__(self, counts: HourlyCounts) -> None:
        self._counts = counts

    def call_started(self, call: CallView) -> None:
        self._counts.count("calls")

    def barge_in(self, frames_dropped: int) -> None:
        self._counts.count("barge_ins")

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        if outcome in TOOL_ERROR_OUTCOMES:
            self._counts.count("tool_errors")

    def live_reconnected(self, close_code: int | None) -> None:
        self._counts.count("reconnects")


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of a histogram given as (upper bound, cumulative count) pairs, linearly
    interpolated within its bucket; None without observations. Beyond the last finite bound
    the answer is that bound (as Prometheus does)."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            inside = cumulative - below
            if inside <= 0:
                return upper
            return lower + (upper - lower) * (rank - below) / inside
        lower, below = upper, cumulative
    return lower


def _samples(metric: Any, suffix: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(suffix):
                found.append((dict(sample.labels), float(sample.value)))
    return found


def glance(metrics: GatewayMetrics, hourly: HourlyCounts) -> dict[str, Any]:
    """The body of GET /console/api/glance."""
    buckets = [
        (float(labels["le"]), value) for labels, value in _samples(metrics.reply_latency, "_bucket")
    ]
    p50 = histogram_quantile(0.5, buckets)
    p95 = histogram_quantile(0.95, buckets)
    tool_errors = sum(
        value
        for labels, value in _samples(metrics.tool_calls, "_total")
        if labels.get("outcome") in TOOL_ERROR_OUTCOMES
    )
    barge_ins = sum(value for _, value in _samples(metrics.barge_ins, "_total"))
    reconnects = sum(value for _, value in _samples(metrics.live_reconnects, "_total"))
    return {
        "calls_today": hourly.calls_today(),
        "reply_latency_ms": {
            "p50": None if p50 is None else round(p50 * 1000.0, 1),
            "p95": None if p95 is None else round(p95 * 1000.0, 1),
        },
        "barge_ins": int(barge_ins),
        "tool_errors": int(tool_errors),
        "live_reconnects": int(reconnects),
        "hourly": hourly.last_24_hours(),
    }
