"""Baseline statistics of the preprocessing job, checked against numpy on small data."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from glue_jobs.preprocess.pipeline import RUNNER
from glue_jobs.preprocess.rows import Record
from glue_jobs.preprocess.stats import (
    QUANTILES,
    BaselineStatistics,
    CountPositivesFn,
    MomentsFn,
    histogram_bin,
    histogram_edges,
)
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.unit


def _combine(fn: beam.CombineFn, chunks: list[list[Any]]) -> Any:
    """Run a CombineFn the way a runner does: partial accumulators per bundle, then a merge."""
    partials = []
    for chunk in chunks:
        accumulator = fn.create_accumulator()
        for value in chunk:
            accumulator = fn.add_input(accumulator, value)
        partials.append(accumulator)
    return fn.extract_output(fn.merge_accumulators(partials))


def test_moments_match_numpy_across_merged_bundles() -> None:
    values = np.random.default_rng(1).normal(40.0, 10.0, 1000)
    chunks = [list(values[:10]), [], [*values[10:600], None, None], list(values[600:])]
    moments = _combine(MomentsFn(), chunks)
    assert moments["count"] == 1000 and moments["missing"] == 2
    assert moments["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert moments["std"] == pytest.approx(values.std(ddof=0), rel=1e-12)
    assert (moments["min"], moments["max"]) == (values.min(), values.max())


def test_moments_stay_accurate_for_a_large_offset() -> None:
    # A naive sum of squares loses every digit here; Welford/Chan keep them.
    values = 1e9 + np.random.default_rng(2).normal(0.0, 0.01, 500)
    moments = _combine(MomentsFn(), [list(values[:250]), list(values[250:])])
    # The data themselves carry ~1e-7 absolute rounding, hence 1e-4 relative; a naive sum of squares
    # would be off by orders of magnitude.
    assert moments["std"] == pytest.approx(values.std(), rel=1e-4)


def test_moments_of_nothing_are_none() -> None:
    assert _combine(MomentsFn(), [[None]]) == {
        "count": 0,
        "missing": 1,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
    }


def test_count_positives() -> None:
    assert _combine(CountPositivesFn(), [[0, 1, 1], [], [0, 0, 1]]) == (6, 3)


@pytest.mark.parametrize(
    "values", [[0.5, 1.0, 1.5, 2.0, 9.5, 10.0], list(np.random.default_rng(3).gamma(2.0, 3.0, 700))]
)
def test_histogram_matches_numpy_including_edges_and_max(values: list[float]) -> None:
    edges = histogram_edges(min(values), max(values), 20)
    counts = np.bincount([histogram_bin(v, edges) for v in values], minlength=20)
    expected_counts, expected_edges = np.histogram(values, bins=20)
    assert edges == list(expected_edges)
    assert list(counts) == list(expected_counts)


def test_histogram_of_a_constant_feature_is_centred_like_numpy() -> None:
    edges = histogram_edges(3.0, 3.0, 4)
    assert edges == list(np.histogram([3.0], bins=4)[1])
    assert histogram_bin(3.0, edges) == int(np.argmax(np.histogram([3.0], bins=4)[0]))


def _records(schema: DatasetSchema, count: int, seed: int) -> list[Record]:
    """Random records valid for ``schema``, built from its columns (no names assumed)."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        values: dict[str, Any] = {}
        for column in schema.columns:
            if column.name == schema.id_column:
                values[column.name] = index + 1
            elif column.kind == "binary":
                values[column.name] = int(rng.random() < 0.2)
            elif column.kind == "categorical":
                values[column.name] = str(rng.choice(column.categories, p=[0.6, 0.3, 0.1]))
            elif column.kind == "string":
                values[column.name] = f"S{index}"
            else:
                low = column.minimum if column.minimum is not None else 0.0
                high = column.maximum if column.maximum is not None else low + 100.0
                # One decimal, like the sensors: ties exercise the quantiles and histogram edges.
                values[column.name] = round(float(rng.uniform(low, high)), 1)
        records.append(Record(line=index + 2, raw="", values=values))
    return records


def test_baseline_statistics_match_numpy(schema: DatasetSchema) -> None:
    records = _records(schema, 250, seed=4)
    # Two missing values, which validated data never has but the statistics must still count.
    torque, category = schema.numeric_features[-1].name, schema.categorical_features[0].name
    records[5] = Record(line=7, raw="", values={**records[5].values, torque: None, category: None})

    def check(outputs: list[dict[str, Any]]) -> None:
        assert len(outputs) == 1
        stats = outputs[0]
        assert (stats["dataset"], stats["split"], stats["rows"]) == (schema.name, "train", 250)
        for column in schema.numeric_features:
            present = np.array([r.values[column.name] for r in records if r.values[column.name] is not None])
            got = stats["numeric_features"][column.name]
            assert got["count"] == len(present)
            assert got["missing"] == 250 - len(present)
            assert got["mean"] == pytest.approx(present.mean(), rel=1e-12)
            assert got["std"] == pytest.approx(present.std(), rel=1e-12)
            assert (got["min"], got["max"]) == (present.min(), present.max())
            # On small data Beam's "approximate" quantiles are order statistics of the data, off by one
            # rank at most from numpy's.
            assert list(got["quantiles"]) == list(QUANTILES)
            step = 1 / len(present)
            for name, percent in QUANTILES.items():
                low = np.quantile(present, max(percent / 100 - step, 0.0), method="lower")
                high = np.quantile(present, min(percent / 100 + step, 1.0), method="higher")
                assert got["quantiles"][name] in present
                assert low <= got["quantiles"][name] <= high, name
            counts, edges = np.histogram(present, bins=20)
            assert got["histogram"] == {"edges": list(edges), "counts": list(counts)}
        column = schema.categorical_features[0]
        values = [r.values[column.name] for r in records]
        assert stats["categorical_features"][column.name] == {
            "count": 249,
            "missing": 1,
            "frequencies": {c: values.count(c) for c in column.categories},
        }
        labels = [r.values[schema.label] for r in records]
        assert stats["label"] == {"name": schema.label, "positives": sum(labels), "positive_rate": sum(labels) / 250}
        assert torque in stats["numeric_features"]

    with BeamTestPipeline(runner=RUNNER) as pipeline:
        stats = pipeline | beam.Create(records) | BaselineStatistics(schema)
        assert_that(stats, check)


def test_baseline_statistics_of_an_empty_split_are_well_formed(schema: DatasetSchema) -> None:
    def check(outputs: list[dict[str, Any]]) -> None:
        (stats,) = outputs
        assert stats["rows"] == 0 and stats["label"]["positive_rate"] is None
        feature = stats["numeric_features"][schema.numeric_features[0].name]
        assert feature["count"] == 0 and feature["histogram"] == {"edges": [], "counts": []}
        assert set(feature["quantiles"].values()) == {None}

    with BeamTestPipeline(runner=RUNNER) as pipeline:
        stats = pipeline | beam.Create([], reshuffle=False).with_output_types(Record) | BaselineStatistics(schema)
        assert_that(stats, check)
