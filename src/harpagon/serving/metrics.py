"""Prometheus metrics of the serving runtime: batches, waits, execution, latency, rejections.

Every server owns its own :class:`prometheus_client.CollectorRegistry`, so several servers in
one process (tests, the demo) keep separate counts. Times are exported in seconds, the
Prometheus base unit, and their names end in ``_seconds``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE_LATEST", "RejectionLog", "ServingMetrics"]

_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TIME_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class ServingMetrics:
    """The runtime's counters and histograms, registered in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batch_size = Histogram(
            "harpagon_batch_size",
            "Real (non-padding) requests per batch sent to a worker.",
            ["module"], buckets=_BATCH_SIZE_BUCKETS, registry=self.registry,
        )
        self.padding = Counter(
            "harpagon_padding",
            "Padding slots (dummy requests) added to batches to reach the planned batch size.",
            ["module"], registry=self.registry,
        )
        self.queue_time = Histogram(
            "harpagon_queue_time_seconds",
            "Time a module request waits in its dispatcher, from creation to the close of its batch.",
            ["module"], buckets=_TIME_BUCKETS_S, registry=self.registry,
        )
        self.execution_time = Histogram(
            "harpagon_execution_time_seconds",
            "Time a worker spends running one batch (StageRunner.run_batch).",
            ["module"], buckets=_TIME_BUCKETS_S, registry=self.registry,
        )
        self.request_latency = Histogram(
            "harpagon_request_latency_seconds",
            "End-to-end latency of successful application requests, measured at the frontend.",
            ["app"], buckets=_TIME_BUCKETS_S, registry=self.registry,
        )
        self.slo_misses = Counter(
            "harpagon_slo_misses",
            "Successful application requests whose end-to-end latency exceeded the SLO.",
            ["app"], registry=self.registry,
        )
        self.rejected = Counter(
            "harpagon_rejected",
            "Inference requests answered with HTTP 503, by reason.",
            ["app", "reason"], registry=self.registry,
        )
        self.failed = Counter(
            "harpagon_failed",
            "Inference requests answered with an error other than 503, by HTTP status.",
            ["app", "status"], registry=self.registry,
        )
        self.in_flight = Gauge(
            "harpagon_in_flight_requests",
            "Application requests admitted and not yet answered.",
            ["app"], registry=self.registry,
        )
        self.worker_replacements = Counter(
            "harpagon_worker_replacements",
            "Workers started to replace one that exited.",
            ["module"], registry=self.registry,
        )

    def observe_batch(self, module: str, num_requests: int, batch_size: int, waits_ms: list[float]) -> None:
        """Record one batch leaving a dispatcher, with each request's dispatcher wait in ms."""
        self.batch_size.labels(module).observe(num_requests)
        self.padding.labels(module).inc(batch_size - num_requests)
        histogram = self.queue_time.labels(module)
        for wait_ms in waits_ms:
            histogram.observe(wait_ms / 1000.0)

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text exposition format."""
        return generate_latest(self.registry)


class RejectionLog:
    """Logs rejected requests (HTTP 4xx and 503) as one WARNING per interval with counts.

    One line per request would flood the log under overload, so rejections are counted by
    status and summarised at most every ``interval_s`` seconds, with the latest message.
    """

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._counts: dict[int, int] = {}
        self._since = self._clock()

    def note(self, status: int, message: str) -> None:
        """Count one rejection; log the summary when the interval has passed."""
        self._counts[status] = self._counts.get(status, 0) + 1
        now = self._clock()
        if now - self._since < self.interval_s:
            return
        counts = ", ".join(f"HTTP {code}: {num}" for code, num in sorted(self._counts.items()))
        logger.warning("rejected %d requests in the last %.0f s (%s); latest: %s",
                       sum(self._counts.values()), now - self._since, counts, message)
        self._counts.clear()
        self._since = now
