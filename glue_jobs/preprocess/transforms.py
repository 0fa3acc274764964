"""The preprocessing steps as PTransforms: numbered raw lines in, curated splits and reports out.

No I/O happens here (see :mod:`glue_jobs.preprocess.files`), so every step runs under ``TestPipeline``
with in-memory inputs. Every applied step has a label, which names it in the runner's logs and metrics.
"""

# Beam's transform constructors (Map, ParDo, CombinePerKey, ...) carry no annotations, and its `|`
# operator returns Any.
# mypy: disable-error-code="no-untyped-call, no-any-return"

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.pvalue import PCollection
from apache_beam.transforms import combiners

from glue_jobs.preprocess import rows
from glue_jobs.preprocess.rows import Record, Rejection
from glue_jobs.preprocess.split import AssignSplits
from glue_jobs.preprocess.stats import BaselineStatistics, CountPositivesFn
from mlkit.schema import SPLITS, DatasetSchema

#: Output tags of :class:`ValidateRows` and :class:`Deduplicate`.
ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
UNIQUE: Final = "unique"
DUPLICATES: Final = "duplicates"
#: Keys of the dict of PCollections returned by :class:`Preprocess`, besides one per split name.
STATISTICS: Final = "statistics"
SUMMARY: Final = "summary"
#: Line counts of the summary; read = accepted + rejected + duplicates.
COUNTS: Final = ("read", "accepted", "rejected", "duplicates")
#: The split the baseline statistics describe: the data the model learns (and normalises) from.
BASELINE_SPLIT: Final = SPLITS[0]


class _ParseLineFn(beam.DoFn):
    def __init__(self, header: Sequence[str], schema: DatasetSchema) -> None:
        super().__init__()
        self._header = tuple(header)
        self._schema = schema

    def process(self, numbered: tuple[int, bytes | str]) -> Iterator[Any]:
        parsed = rows.parse_line(numbered[0], numbered[1], self._header, self._schema)
        if isinstance(parsed, Rejection):
            yield pvalue.TaggedOutput(REJECTED, parsed)
        else:
            yield parsed


class ValidateRows(beam.PTransform[PCollection[tuple[int, bytes | str]], dict[str, PCollection[Any]]]):
    """``PCollection[(line number, line)]`` -> ``{"accepted": Record..., "rejected": Rejection...}``.

    Args:
        header: Column names in header order (from :func:`glue_jobs.preprocess.rows.parse_header`).
        schema: The dataset schema every value is checked against.
    """

    def __init__(self, header: Sequence[str], schema: DatasetSchema) -> None:
        super().__init__()
        self._header = tuple(header)
        self._schema = schema

    def expand(self, lines: PCollection[tuple[int, bytes | str]]) -> dict[str, PCollection[Any]]:
        """Parse every line; each becomes exactly one record or one rejection."""
        parsed = lines | "ParseRows" >> beam.ParDo(_ParseLineFn(self._header, self._schema)).with_outputs(
            REJECTED, main=ACCEPTED
        )
        return {ACCEPTED: parsed[ACCEPTED], REJECTED: parsed[REJECTED]}


class _KeepFirstFn(beam.DoFn):
    def __init__(self, id_column: str) -> None:
        super().__init__()
        self._id_column = id_column

    def process(self, keyed: tuple[Any, Sequence[Record]]) -> Iterator[Any]:
        # The earliest line wins, whatever order the grouping delivered the copies in.
        first, *later = sorted(keyed[1], key=lambda record: record.line)
        yield first
        for record in later:
            yield pvalue.TaggedOutput(DUPLICATES, rows.duplicate(record, first, self._id_column))


class Deduplicate(beam.PTransform[PCollection[Record], dict[str, PCollection[Any]]]):
    """``PCollection[Record]`` -> ``{"unique": Record..., "duplicates": Rejection...}`` by the id column.

    The first occurrence (smallest line number) of each id is kept; every later one becomes a rejection
    of kind ``duplicate`` that names the line it repeats. Only accepted rows take part, so an invalid
    row never shadows a valid one with the same id.
    """

    def __init__(self, id_column: str) -> None:
        super().__init__()
        self._id_column = id_column

    def expand(self, records: PCollection[Record]) -> dict[str, PCollection[Any]]:
        """Group by id and keep the first of each group."""
        id_column = self._id_column
        kept = (
            records
            | "KeyById" >> beam.Map(lambda record: (record.values[id_column], record))
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_KeepFirstFn(id_column)).with_outputs(DUPLICATES, main=UNIQUE)
        )
        return {UNIQUE: kept[UNIQUE], DUPLICATES: kept[DUPLICATES]}


class Summarize(beam.PTransform[dict[str, PCollection[Any]], PCollection[dict[str, Any]]]):
    """Count what happened to the input's lines into one summary dict (a single-element PCollection).

    Applied to a dict of PCollections: ``read`` (every line), ``accepted`` (kept records), ``rejected``
    and ``duplicates`` (rejections) and ``split_records`` (``(split, Record)`` pairs). The summary holds
    those four counts, ``rejections_by_reason`` (reason class -> count, duplicates as ``duplicate id``)
    and ``splits`` (``rows`` and ``positives`` per split).

    Args:
        schema: Gives the label column counted per split.
        source: The input's location, recorded as ``"input"``.
    """

    def __init__(self, schema: DatasetSchema, source: str) -> None:
        super().__init__()
        self._label = schema.label
        self._source = source

    def expand(self, inputs: dict[str, PCollection[Any]]) -> PCollection[dict[str, Any]]:
        """Count every input and assemble the counts."""
        label = self._label
        # One combiner for all four counts: each element becomes the name of the count it adds to.
        counts = (
            [inputs[name] | f"Name{name.title()}" >> beam.Map(lambda _, name: name, name) for name in COUNTS]
            | "AllCounted" >> beam.Flatten()
            | "CountPerName" >> combiners.Count.PerElement()
            | "CountsAsDict" >> combiners.ToDict()
        )
        reasons = (
            (inputs["rejected"], inputs["duplicates"])
            | "AllRejections" >> beam.Flatten()
            | "ReasonClass" >> beam.Map(lambda rejection: rejection.reason_class)
            | "CountPerReason" >> combiners.Count.PerElement()
        )
        per_split = (
            inputs["split_records"]
            | "SplitLabels" >> beam.MapTuple(lambda split, record: (split, record.values[label]))
            | "CountPerSplit" >> beam.CombinePerKey(CountPositivesFn())
        )
        return counts | "Assemble" >> beam.Map(
            self._assemble, reasons=pvalue.AsDict(reasons), per_split=pvalue.AsDict(per_split)
        )

    def _assemble(
        self, counts: dict[str, int], *, reasons: dict[str, int], per_split: dict[str, tuple[int, int]]
    ) -> dict[str, Any]:
        return {
            "input": self._source,
            **{name: counts.get(name, 0) for name in COUNTS},
            "rejections_by_reason": dict(sorted(reasons.items())),
            "splits": {
                split: {"rows": per_split.get(split, (0, 0))[0], "positives": per_split.get(split, (0, 0))[1]}
                for split in SPLITS
            },
        }


class _SplitPartitionFn(beam.PartitionFn):
    def partition_for(self, element: Any, num_partitions: int, *args: Any, **kwargs: Any) -> int:
        return SPLITS.index(element[0])


class Preprocess(beam.PTransform[PCollection[tuple[int, bytes | str]], dict[str, PCollection[Any]]]):
    """The whole job as one transform: numbered raw lines -> curated splits, rejections and reports.

    Input: ``PCollection[(line number, line)]`` of the data lines (header excluded).

    Output: a dict of PCollections: ``"train"``, ``"validation"``, ``"test"`` (``Record``),
    ``"rejected"`` (``Rejection``: invalid rows and duplicates), ``"statistics"`` (one dict, baseline
    statistics of the train split) and ``"summary"`` (one dict, see :class:`Summarize`).

    Args:
        header: Column names in header order.
        schema: The dataset schema.
        source: The input's location, recorded in the summary.
    """

    def __init__(self, header: Sequence[str], schema: DatasetSchema, source: str) -> None:
        super().__init__()
        self._header = tuple(header)
        self._schema = schema
        self._source = source

    def expand(self, lines: PCollection[tuple[int, bytes | str]]) -> dict[str, PCollection[Any]]:
        """Validate, deduplicate, split, then describe the result."""
        validated = lines | "Validate" >> ValidateRows(self._header, self._schema)
        deduplicated = validated[ACCEPTED] | "Deduplicate" >> Deduplicate(self._schema.id_column)
        split_records = deduplicated[UNIQUE] | "AssignSplits" >> AssignSplits(self._schema)
        by_split = split_records | "PartitionBySplit" >> beam.Partition(_SplitPartitionFn(), len(SPLITS))
        outputs: dict[str, PCollection[Any]] = {
            split: by_split[index] | f"{split.title()}Records" >> beam.Values() for index, split in enumerate(SPLITS)
        }
        outputs[REJECTED] = (validated[REJECTED], deduplicated[DUPLICATES]) | "AllRejected" >> beam.Flatten()
        outputs[STATISTICS] = outputs[BASELINE_SPLIT] | "BaselineStatistics" >> BaselineStatistics(
            self._schema, BASELINE_SPLIT
        )
        outputs[SUMMARY] = {
            "read": lines,
            "accepted": deduplicated[UNIQUE],
            "rejected": validated[REJECTED],
            "duplicates": deduplicated[DUPLICATES],
            "split_records": split_records,
        } | "Summarize" >> Summarize(self._schema, self._source)
        return outputs
