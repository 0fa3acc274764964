"""Send a curated split to an endpoint over HTTP and compare served with offline predictions."""

from __future__ import annotations

import csv
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkit.schema import DatasetSchema

#: Served probabilities may differ from offline ones by float32 rounding only.
PROBABILITY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Served:
    """One row's answer from the endpoint."""

    row_id: str
    probability: float
    label: int
    latency_ms: float


@dataclass
class Comparison:
    """Served against offline predictions, row by row."""

    rows: int = 0
    label_mismatches: list[str] = field(default_factory=list)
    probability_mismatches: list[str] = field(default_factory=list)
    missing_offline: list[str] = field(default_factory=list)
    not_served: list[str] = field(default_factory=list)
    max_abs_difference: float = 0.0

    @property
    def equal(self) -> bool:
        """True when every offline row was served, and every served row matches its offline prediction."""
        mismatched = self.label_mismatches or self.probability_mismatches or self.missing_offline or self.not_served
        return self.rows > 0 and not mismatched

    def as_dict(self) -> dict[str, Any]:
        """JSON form for reports (mismatch lists cut to the first ten ids)."""
        return {
            "rows": self.rows,
            "equal": self.equal,
            "label_mismatches": len(self.label_mismatches),
            "probability_mismatches": len(self.probability_mismatches),
            "missing_offline": len(self.missing_offline),
            "not_served": len(self.not_served),
            "first_mismatched_ids": (
                self.label_mismatches + self.probability_mismatches + self.missing_offline + self.not_served
            )[:10],
            "max_abs_probability_difference": self.max_abs_difference,
        }


def read_split(split_dir: Path) -> list[dict[str, str]]:
    """Read every CSV shard of a curated split (as written by the preprocessing job)."""
    rows: list[dict[str, str]] = []
    shards = sorted(split_dir.glob("*.csv"))
    if not shards:
        raise FileNotFoundError(f"no CSV shards in {split_dir}")
    for shard in shards:
        with shard.open(newline="", encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def invoke_rows(
    url: str,
    rows: Iterable[dict[str, str]],
    schema: DatasetSchema,
    *,
    timeout: float = 60.0,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Served]:
    """POST each row alone as a JSON object of raw feature values, as a client application would.

    Args:
        url: The endpoint's ``/invocations`` URL.
        rows: Curated rows (strings keyed by column name).
        schema: Gives the feature columns and the id column.
        timeout: Per-request timeout in seconds (SageMaker allows 60 s).
        on_progress: Called with the number of rows sent so far, every 250 rows.

    Yields:
        One :class:`Served` per row, in order.

    Raises:
        RuntimeError: If the endpoint answers a row with an error status.
    """
    for count, row in enumerate(rows, start=1):
        record = {c.name: schema.column(c.name).parse(row[c.name]) for c in schema.features}
        request = urllib.request.Request(
            url,
            data=json.dumps(record).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise RuntimeError(f"endpoint answered row {row[schema.id_column]} with {error.code}: {detail}") from None
        latency_ms = (time.perf_counter() - started) * 1000.0
        prediction = body["predictions"][0]
        yield Served(row[schema.id_column], float(prediction["probability"]), int(prediction["label"]), latency_ms)
        if on_progress and count % 250 == 0:
            on_progress(count)


def read_offline_predictions(path: Path) -> dict[str, tuple[float, int]]:
    """Read ``test_predictions.csv`` written by ``train.py``: id -> (probability, predicted label)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {r["id"]: (float(r["probability"]), int(r["predicted"])) for r in csv.DictReader(handle)}


def compare(served: Iterable[Served], offline: dict[str, tuple[float, int]]) -> Comparison:
    """Compare served predictions with the offline evaluation's, row by row; every offline row must be served."""
    result = Comparison()
    seen: set[str] = set()
    for answer in served:
        result.rows += 1
        seen.add(answer.row_id)
        if answer.row_id not in offline:
            result.missing_offline.append(answer.row_id)
            continue
        probability, label = offline[answer.row_id]
        difference = abs(probability - answer.probability)
        result.max_abs_difference = max(result.max_abs_difference, difference)
        if label != answer.label:
            result.label_mismatches.append(answer.row_id)
        elif not math.isclose(probability, answer.probability, abs_tol=PROBABILITY_TOLERANCE):
            result.probability_mismatches.append(answer.row_id)
    result.not_served = sorted(set(offline) - seen)
    return result


def percentile(values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) with linear interpolation; ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
