"""Baseline statistics of a split, computed with Beam combiners, for drift monitoring and normalisation.

The result is one JSON-ready dict::

    {"dataset": ..., "split": "train", "rows": N,
     "numeric_features": {name: {"count", "missing", "mean", "std", "min", "max",
                                 "quantiles": {"p01": ..., ..., "p99": ...},
                                 "histogram": {"edges": [21 floats], "counts": [20 ints]}}},
     "categorical_features": {name: {"count", "missing", "frequencies": {category: n}}},
     "label": {"name": ..., "positives": N, "positive_rate": x}}

Every number is computed in parallel-safe combiners: moments with Welford/Chan updates, quantiles with
Beam's ``ApproximateQuantiles`` (values of the data; their rank is off by under 1 % of the count, and by
at most one on small data) and histograms as per-bin counts against edges from the moments.
"""

# Beam's transform constructors (Map, ParDo, CombinePerKey, ...) carry no annotations, and its `|`
# operator returns Any.
# mypy: disable-error-code="no-untyped-call, no-any-return"

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import apache_beam as beam
from apache_beam.pvalue import AsDict, PCollection
from apache_beam.transforms import combiners

from glue_jobs.preprocess.rows import Record
from mlkit.schema import DatasetSchema

#: Reported quantiles: name -> percent.
QUANTILES: Final = {"p01": 1, "p05": 5, "p10": 10, "p25": 25, "p50": 50, "p75": 75, "p90": 90, "p95": 95, "p99": 99}
#: Equal-width histogram bins between each feature's min and max.
HISTOGRAM_BINS: Final = 20
# One quantile per percent, so every entry of QUANTILES is an exact index into Beam's output.
_NUM_QUANTILES: Final = 101

# Moments accumulator: [count, missing, mean, sum of squared deviations (M2), min, max].
_Moments = list[Any]


class MomentsFn(beam.CombineFn):
    """Count, missing count, mean, population std (``ddof=0``), min and max of numbers (``None`` = missing).

    Uses Welford's update per value and Chan's formula to merge, which stay accurate where a naive
    sum of squares would cancel catastrophically (e.g. temperatures around 300 K with 1 K spread).
    """

    def create_accumulator(self) -> _Moments:
        """Return the moments of no values."""
        return [0, 0, 0.0, 0.0, math.inf, -math.inf]

    def add_input(self, accumulator: _Moments, value: float | None) -> _Moments:
        """Add one value (``None`` counts as missing)."""
        if value is None:
            accumulator[1] += 1
            return accumulator
        count = accumulator[0] + 1
        delta = value - accumulator[2]
        mean = accumulator[2] + delta / count
        accumulator[0], accumulator[2] = count, mean
        accumulator[3] += delta * (value - mean)
        accumulator[4] = min(accumulator[4], value)
        accumulator[5] = max(accumulator[5], value)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Moments]) -> _Moments:
        """Merge partial moments (Chan et al.)."""
        merged = self.create_accumulator()
        for other in accumulators:
            count = merged[0] + other[0]
            if other[0]:
                delta = other[2] - merged[2]
                merged[2] += delta * other[0] / count
                merged[3] += other[3] + delta * delta * merged[0] * other[0] / count
            merged[0] = count
            merged[1] += other[1]
            merged[4] = min(merged[4], other[4])
            merged[5] = max(merged[5], other[5])
        return merged

    def extract_output(self, accumulator: _Moments) -> dict[str, Any]:
        """Return ``count``, ``missing``, ``mean``, ``std``, ``min`` and ``max`` (``None`` without values)."""
        count, missing, mean, m2, low, high = accumulator
        if not count:
            return {"count": 0, "missing": missing, "mean": None, "std": None, "min": None, "max": None}
        return {
            "count": count,
            "missing": missing,
            "mean": mean,
            "std": math.sqrt(max(m2, 0.0) / count),
            "min": low,
            "max": high,
        }


class CountPositivesFn(beam.CombineFn):
    """Binary label values -> ``(rows, positives)``."""

    def create_accumulator(self) -> tuple[int, int]:
        """Return the counts of no rows."""
        return (0, 0)

    def add_input(self, accumulator: tuple[int, int], label: int) -> tuple[int, int]:
        """Count one row and whether it is positive."""
        return (accumulator[0] + 1, accumulator[1] + (1 if label == 1 else 0))

    def merge_accumulators(self, accumulators: Iterable[tuple[int, int]]) -> tuple[int, int]:
        """Add up partial counts."""
        rows = positives = 0
        for part_rows, part_positives in accumulators:
            rows += part_rows
            positives += part_positives
        return (rows, positives)

    def extract_output(self, accumulator: tuple[int, int]) -> tuple[int, int]:
        """Return ``(rows, positives)``."""
        return accumulator


def histogram_edges(low: float, high: float, bins: int = HISTOGRAM_BINS) -> list[float]:
    """Return ``bins + 1`` equal-width edges from ``low`` to ``high``, as ``numpy.histogram`` would.

    A constant feature (``low == high``) gets the range ``low - 0.5 .. high + 0.5``, as in numpy, so
    its single value falls in the middle bin instead of yielding zero-width bins.
    """
    if low == high:
        low, high = low - 0.5, high + 0.5
    step = (high - low) / bins
    return [low + index * step for index in range(bins)] + [high]


def histogram_bin(value: float, edges: list[float]) -> int:
    """Return the index of the bin holding ``value``: ``edges[i] <= value < edges[i + 1]``.

    The last bin is closed on the right, so the maximum is counted, as in ``numpy.histogram``. Values
    outside the edges are clamped to the first or last bin (cannot happen for edges from the same data).
    """
    return min(max(bisect.bisect_right(edges, value) - 1, 0), len(edges) - 2)


class BaselineStatistics(beam.PTransform[PCollection[Record], PCollection[dict[str, Any]]]):
    """``PCollection[Record]`` -> a single-element ``PCollection[dict]`` of baseline statistics.

    Args:
        schema: Which columns are numeric or categorical features, and which is the label.
        split: Name of the split the records come from, recorded in the output.
        bins: Number of histogram bins per numeric feature.
    """

    def __init__(self, schema: DatasetSchema, split: str = "train", bins: int = HISTOGRAM_BINS) -> None:
        super().__init__()
        self._schema = schema
        self._split = split
        self._bins = bins

    def expand(self, records: PCollection[Record]) -> PCollection[dict[str, Any]]:
        """Compute every statistic, then assemble them into one dict."""
        numeric_names = [c.name for c in self._schema.numeric_features]
        categorical_names = [c.name for c in self._schema.categorical_features]
        label, bins = self._schema.label, self._bins

        numeric = records | "NumericValues" >> beam.FlatMap(
            lambda record: [(name, record.values.get(name)) for name in numeric_names]
        )
        moments = numeric | "Moments" >> beam.CombinePerKey(MomentsFn())
        present = numeric | "DropMissing" >> beam.Filter(lambda item: item[1] is not None)
        quantiles = present | "Quantiles" >> beam.ApproximateQuantiles.PerKey(num_quantiles=_NUM_QUANTILES)
        edges = (
            moments
            | "KeepPresent" >> beam.Filter(lambda item: item[1]["count"] > 0)
            | "HistogramEdges" >> beam.MapTuple(lambda name, m: (name, histogram_edges(m["min"], m["max"], bins)))
        )
        bin_counts = (
            present
            | "HistogramBin"
            >> beam.Map(lambda item, edges: (item[0], histogram_bin(item[1], edges[item[0]])), edges=AsDict(edges))
            | "CountPerBin" >> combiners.Count.PerElement()
        )
        category_counts = (
            records
            | "CategoricalValues"
            >> beam.FlatMap(lambda record: [(name, record.values.get(name)) for name in categorical_names])
            | "CountPerCategory" >> combiners.Count.PerElement()
        )
        label_counts = (
            records
            | "LabelValues" >> beam.Map(lambda record: record.values[label])
            | "CountPositives" >> beam.CombineGlobally(CountPositivesFn())
        )
        return label_counts | "Assemble" >> beam.Map(
            self._assemble,
            moments=AsDict(moments),
            quantiles=AsDict(quantiles),
            edges=AsDict(edges),
            bin_counts=AsDict(bin_counts),
            category_counts=AsDict(category_counts),
        )

    def _assemble(
        self,
        label_counts: tuple[int, int],
        *,
        moments: Mapping[str, dict[str, Any]],
        quantiles: Mapping[str, list[float]],
        edges: Mapping[str, list[float]],
        bin_counts: Mapping[tuple[str, int], int],
        category_counts: Mapping[tuple[str, Any], int],
    ) -> dict[str, Any]:
        rows, positives = label_counts
        numeric: dict[str, Any] = {}
        for column in self._schema.numeric_features:
            name = column.name
            stats = dict(moments.get(name) or MomentsFn().extract_output(MomentsFn().create_accumulator()))
            stats["quantiles"] = _pick_quantiles(quantiles.get(name, []))
            stats["histogram"] = {
                "edges": edges.get(name, []),
                "counts": [bin_counts.get((name, index), 0) for index in range(len(edges.get(name, [])) - 1)],
            }
            numeric[name] = stats
        categorical: dict[str, Any] = {}
        for column in self._schema.categorical_features:
            frequencies = {category: category_counts.get((column.name, category), 0) for category in column.categories}
            categorical[column.name] = {
                "count": sum(frequencies.values()),
                "missing": category_counts.get((column.name, None), 0),
                "frequencies": frequencies,
            }
        return {
            "dataset": self._schema.name,
            "split": self._split,
            "rows": rows,
            "numeric_features": numeric,
            "categorical_features": categorical,
            "label": {
                "name": self._schema.label,
                "positives": positives,
                "positive_rate": positives / rows if rows else None,
            },
        }


def _pick_quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {name: None for name in QUANTILES}
    # Beam returns _NUM_QUANTILES values (min, 1 %, ..., max); index by rank so fewer values still work.
    last = len(values) - 1
    return {name: values[round(percent / 100 * last)] for name, percent in QUANTILES.items()}
