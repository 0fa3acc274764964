"""Deterministic split of the preprocessing job: a salted hash of the id, stable across reruns and row order."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from glue_jobs.preprocess.pipeline import RUNNER
from glue_jobs.preprocess.rows import Record, parse_header, parse_line
from glue_jobs.preprocess.split import AssignSplits, assign_split, split_fraction
from mlkit.schema import DatasetSchema, SplitConfig

pytestmark = pytest.mark.unit

CONFIG = SplitConfig(train=0.7, validation=0.15, test=0.15, salt="unit-test")


def test_fraction_is_a_pure_function_of_salt_and_id() -> None:
    assert split_fraction(42, "s") == split_fraction(42, "s") == split_fraction("42", "s")
    assert 0.0 <= split_fraction(42, "s") < 1.0
    assert split_fraction(42, "s") != split_fraction(42, "other salt")
    assert split_fraction(42, "s") != split_fraction(43, "s")


def test_split_is_pinned_for_known_ids(schema: DatasetSchema) -> None:
    # Pinned: a change here silently moves rows between train and test of every deployed dataset.
    assert [assign_split(i, schema.split) for i in range(1, 13)] == [
        "validation", "train", "train", "validation", "train", "train",
        "train", "test", "train", "test", "test", "train",
    ]  # fmt: skip
    digest = hashlib.sha256(f"{schema.split.salt}:1".encode()).digest()
    assert split_fraction(1, schema.split.salt) == int.from_bytes(digest[:8], "big") / 2**64 == 0.8292146145104531


def test_fractions_match_the_configuration_within_tolerance() -> None:
    counts = Counter(assign_split(i, CONFIG) for i in range(50_000))
    assert set(counts) == {"train", "validation", "test"}
    for name, expected in CONFIG.fractions().items():
        assert counts[name] / 50_000 == pytest.approx(expected, abs=0.01)


def test_the_salt_reshuffles() -> None:
    other = SplitConfig(train=0.7, validation=0.15, test=0.15, salt="another")
    moved = sum(assign_split(i, CONFIG) != assign_split(i, other) for i in range(2000))
    assert moved > 500  # about 1 - (0.7² + 2·0.15²) = 46 % of rows change split


def test_extreme_fractions_still_assign_every_id() -> None:
    tiny = SplitConfig(train=0.98, validation=0.01, test=0.01, salt="x")
    assert {assign_split(i, tiny) for i in range(5000)} == {"train", "validation", "test"}


def _records(schema: DatasetSchema, csv_path: Path, count: int) -> list[Record]:
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    header = parse_header(lines[0], schema)
    parsed = [parse_line(number, text, header, schema) for number, text in enumerate(lines[1 : count + 1], start=2)]
    assert all(isinstance(record, Record) for record in parsed)
    return [record for record in parsed if isinstance(record, Record)]


def test_assign_splits_transform_uses_the_schema_salt(schema: DatasetSchema, ai4i_csv: Path) -> None:
    records = _records(schema, ai4i_csv, 300)
    expected = [(assign_split(r.values[schema.id_column], schema.split), r.values[schema.id_column]) for r in records]
    with BeamTestPipeline(runner=RUNNER) as pipeline:
        assigned = (
            pipeline
            | "Records" >> beam.Create(records)
            | "AssignSplits" >> AssignSplits(schema)
            | "SplitAndId" >> beam.MapTuple(lambda split, r: (split, r.values["UDI"]))
        )
        assert_that(assigned, equal_to(expected))


def test_split_membership_is_stable_under_row_order_shuffles(schema: DatasetSchema, ai4i_csv: Path) -> None:
    records = _records(schema, ai4i_csv, 400)
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    # Same ids in another order and on other lines: no row may change split.
    renumbered = [Record(line=i + 2, raw=r.raw, values=r.values) for i, r in enumerate(shuffled)]
    expected = [(assign_split(r.values["UDI"], schema.split), r.values["UDI"]) for r in records]
    with BeamTestPipeline(runner=RUNNER) as pipeline:
        assigned = (
            pipeline
            | "Shuffled" >> beam.Create(renumbered)
            | "AssignSplits" >> AssignSplits(schema)
            | "SplitAndId" >> beam.MapTuple(lambda split, r: (split, r.values["UDI"]))
        )
        assert_that(assigned, equal_to(expected))
