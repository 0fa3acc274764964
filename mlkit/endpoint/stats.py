"""Per-invocation latencies and outcomes, the raw material of SageMaker's endpoint metrics.

SageMaker publishes, in microseconds, ``ModelLatency`` (the time the model container took to answer,
pre- and post-processing included) and ``OverheadLatency`` (the rest of the time until the client is
answered). The endpoint server measures both for every request: model latency around the container's
request path (handlers plus TF Serving), overhead latency around everything else the server does for
the request (reading the body, checks, framing the answer). A front end such as the LocalStack plugin
adds its own time to the overhead.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

_HTTP_4XX = range(400, 500)
_HTTP_5XX = range(500, 600)


@dataclass(frozen=True)
class InvocationRecord:
    """One ``/invocations`` request.

    Attributes:
        status: The HTTP status answered.
        model_latency_us: Microseconds in the container's request path (handlers and model).
        overhead_latency_us: Microseconds the server spent on the request outside that path.
        predict_latency_us: Microseconds inside the model's signature call (part of the model latency).
    """

    status: int
    model_latency_us: int
    overhead_latency_us: int
    predict_latency_us: int


@dataclass(frozen=True)
class StatsSnapshot:
    """Counts since the server started, and the most recent records.

    Attributes:
        invocations: Requests answered on ``/invocations``.
        errors_4xx: Those answered with a 4xx status.
        errors_5xx: Those answered with a 5xx status.
        records: The most recent records, oldest first (bounded, see :class:`EndpointStats`).
    """

    invocations: int
    errors_4xx: int
    errors_5xx: int
    records: tuple[InvocationRecord, ...]

    def percentile(self, field: str, q: float) -> int | None:
        """Return the ``q``-th percentile (0-100, nearest rank) of a latency field, ``None`` if no records.

        Args:
            field: ``model_latency_us``, ``overhead_latency_us`` or ``predict_latency_us``.
            q: Percentile, e.g. 50 or 99.
        """
        values = sorted(int(getattr(record, field)) for record in self.records)
        if not values:
            return None
        rank = min(len(values), max(1, math.ceil(len(values) * q / 100)))
        return values[rank - 1]


class EndpointStats:
    """Thread-safe collection of :class:`InvocationRecord`.

    Args:
        keep: How many recent records to keep (counts cover every request).
    """

    def __init__(self, keep: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[InvocationRecord] = deque(maxlen=keep)
        self._invocations = 0
        self._errors_4xx = 0
        self._errors_5xx = 0

    def record(self, record: InvocationRecord) -> None:
        """Add one request's outcome."""
        with self._lock:
            self._records.append(record)
            self._invocations += 1
            self._errors_4xx += record.status in _HTTP_4XX
            self._errors_5xx += record.status in _HTTP_5XX

    def snapshot(self) -> StatsSnapshot:
        """Return a consistent copy of the counts and records."""
        with self._lock:
            return StatsSnapshot(self._invocations, self._errors_4xx, self._errors_5xx, tuple(self._records))
