"""Training metrics as SageMaker derives them from a job's log (no LocalStack imports)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any


def final_metrics(
    log_lines: Iterable[str], definitions: Sequence[Mapping[str, str]], timestamp: datetime
) -> list[dict[str, Any]]:
    """Build ``FinalMetricDataList``: for each metric definition, the last value its regex matched.

    Args:
        log_lines: The job's log, line by line.
        definitions: ``AlgorithmSpecification.MetricDefinitions`` (``Name`` and ``Regex`` with one group).
        timestamp: The job's end, used as each metric's ``Timestamp``.

    Returns:
        ``[{"MetricName", "Value", "Timestamp"}]`` for the metrics that matched at least once.
    """
    patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions if d.get("Name") and d.get("Regex")]
    last: dict[str, float] = {}
    for line in log_lines:
        for name, pattern in patterns:
            match = pattern.search(line)
            if match is None:
                continue
            try:
                last[name] = float(match.group(1) if pattern.groups else match.group(0))
            except (ValueError, IndexError):
                continue
    return [{"MetricName": name, "Value": value, "Timestamp": timestamp} for name, value in last.items()]
