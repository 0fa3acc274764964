"""The preprocessing PTransforms under TestPipeline: validation, deduplication, the whole composition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from glue_jobs.preprocess.pipeline import RUNNER
from glue_jobs.preprocess.rows import Record, parse_header, parse_line
from glue_jobs.preprocess.split import assign_split
from glue_jobs.preprocess.transforms import (
    ACCEPTED,
    DUPLICATES,
    REJECTED,
    STATISTICS,
    SUMMARY,
    UNIQUE,
    Deduplicate,
    Preprocess,
    ValidateRows,
)
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def real_lines(ai4i_csv: Path) -> list[str]:
    """The header and the first 400 data lines of the real CSV."""
    with ai4i_csv.open(encoding="utf-8") as handle:
        return [next(handle).rstrip("\n") for _ in range(401)]


def _numbered(lines: list[str]) -> list[tuple[int, bytes]]:
    """Data lines numbered as in a file whose line 1 is the header, as bytes like the reader yields."""
    return [(number, text.encode()) for number, text in enumerate(lines, start=2)]


def test_validate_rows_splits_accepted_from_rejected(schema: DatasetSchema, real_lines: list[str]) -> None:
    header = parse_header(real_lines[0], schema)
    good = real_lines[1:4]
    lines = [*good, "", "7,L1,L,298,308,1500,-3,0,0,0,0,0,0,0", "8,L2,L"]
    with BeamTestPipeline(runner=RUNNER) as pipeline:
        result = pipeline | beam.Create(_numbered(lines)) | ValidateRows(header, schema)
        accepted_ids = result[ACCEPTED] | "AcceptedIds" >> beam.Map(lambda r: (r.line, r.values["UDI"]))
        reasons = result[REJECTED] | "Reasons" >> beam.Map(lambda r: (r.line, r.reason, r.kind))
        assert_that(accepted_ids, equal_to([(2, 1), (3, 2), (4, 3)]), label="AcceptedLinesAndIds")
        assert_that(
            reasons,
            equal_to(
                [
                    (5, "blank line", "invalid"),
                    (6, "'Torque [Nm]'=-3 is below the plausible minimum 0", "invalid"),
                    (7, "expected 14 fields, found 3", "invalid"),
                ]
            ),
            label="RejectedReasons",
        )


def test_deduplicate_keeps_the_earliest_line(schema: DatasetSchema, real_lines: list[str]) -> None:
    header = parse_header(real_lines[0], schema)
    first, second = real_lines[1], real_lines[2]
    # UDI 1 appears on lines 2, 5 and 7; UDI 2 once. Delivery order must not matter, so feed it scrambled.
    numbered = [(7, first), (3, second), (2, first), (5, first.replace("M14860", "CHANGED"))]
    records = [parse_line(n, text, header, schema) for n, text in numbered]
    with BeamTestPipeline(runner=RUNNER) as pipeline:
        result = pipeline | beam.Create(records) | Deduplicate(schema.id_column)
        unique = result[UNIQUE] | "UniqueLines" >> beam.Map(lambda r: r.line)
        duplicates = result[DUPLICATES] | "DuplicateJson" >> beam.Map(lambda r: r.to_json())
        assert_that(unique, equal_to([2, 3]), label="KeptLines")
        assert_that(
            duplicates,
            equal_to(
                [
                    {
                        "line": 5,
                        "reason": "duplicate UDI 1 (first seen on line 2)",
                        "raw": first.replace("M14860", "CHANGED"),
                        "kind": "duplicate",
                    },
                    {"line": 7, "reason": "duplicate UDI 1 (first seen on line 2)", "raw": first, "kind": "duplicate"},
                ]
            ),
            label="Duplicates",
        )


def test_preprocess_composes_every_step(schema: DatasetSchema, real_lines: list[str]) -> None:
    header = parse_header(real_lines[0], schema)
    data = real_lines[1:]
    lines = [*data, data[41], "", data[0].replace(",M,", ",Q,")]
    records = [parse_line(n, t, header, schema) for n, t in enumerate(data, start=2)]
    expected_splits: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for record in records:
        assert isinstance(record, Record)
        expected_splits[assign_split(record.values["UDI"], schema.split)].append(record.values["UDI"])

    def check_summary(summaries: list[dict[str, Any]]) -> None:
        (summary,) = summaries
        assert summary["input"] == "memory://test"
        assert (summary["read"], summary["accepted"], summary["rejected"], summary["duplicates"]) == (403, 400, 2, 1)
        assert summary["read"] == summary["accepted"] + summary["rejected"] + summary["duplicates"]
        assert summary["rejections_by_reason"] == {"blank line": 1, "duplicate id": 1, "unknown category": 1}
        assert {name: s["rows"] for name, s in summary["splits"].items()} == {
            name: len(ids) for name, ids in expected_splits.items()
        }

    with BeamTestPipeline(runner=RUNNER) as pipeline:
        result = pipeline | beam.Create(_numbered(lines)) | Preprocess(header, schema, source="memory://test")
        memberships = [
            result[split] | f"{split.title()}Ids" >> beam.Map(lambda r, name: (name, r.values["UDI"]), split)
            for split in expected_splits
        ] | "AllMemberships" >> beam.Flatten()
        expected = [(split, udi) for split, ids in expected_splits.items() for udi in ids]
        assert_that(memberships, equal_to(expected), label="Memberships")
        rejected = result[REJECTED] | "RejectedLines" >> beam.Map(lambda r: (r.line, r.kind))
        assert_that(rejected, equal_to([(402, "duplicate"), (403, "invalid"), (404, "invalid")]), label="Rejected")
        assert_that(result[SUMMARY], check_summary, label="Summary")
        rows = result[STATISTICS] | "StatisticsRows" >> beam.Map(lambda s: s["rows"])
        assert_that(rows, equal_to([len(expected_splits["train"])]), label="StatisticsOnTrain")
