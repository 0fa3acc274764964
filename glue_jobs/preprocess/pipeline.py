"""Run the preprocessing job: read the raw CSV, preprocess it, write the outputs, check the result.

The work itself is :class:`~glue_jobs.preprocess.transforms.Preprocess`; this module adds the edges.

Output layout under ``--output`` (training and the stacks depend on it)::

    train/part-00000-of-00001.csv        curated columns (id, features, label), header line, sorted by id
    validation/part-00000-of-00001.csv
    test/part-00000-of-00001.csv
    rejected/rejected-00000-of-00001.jsonl   {"line", "reason", "raw", "kind"} per rejected line, by line
    baseline/statistics.json             baseline statistics of the train split (see stats.py)
    summary.json                         counts: read = accepted + rejected + duplicates, per-split rows

Beam runs in-process on the ``FnApiRunner``: Beam's default runner would first try to download the
Prism binary, which fails offline (and in Glue, which has no outbound network by default).
"""

# Beam's transform constructors (Map, ParDo, CombinePerKey, ...) and FileSystems carry no annotations,
# and its `|` operator returns Any.
# mypy: disable-error-code="no-untyped-call, no-any-return"

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, S3Options, StandardOptions

from glue_jobs.preprocess import files, rows
from glue_jobs.preprocess.transforms import REJECTED, STATISTICS, SUMMARY, Preprocess
from mlkit.schema import DEFAULT_DATASET, SPLITS, DatasetSchema, SchemaError

#: The in-process runner: no download, no service, no container.
RUNNER: Final = "FnApiRunner"
SPLIT_FILE: Final = "part-00000-of-00001.csv"
REJECTED_FILE: Final = "rejected-00000-of-00001.jsonl"
STATISTICS_PATH: Final = ("baseline", "statistics.json")
SUMMARY_FILE: Final = "summary.json"
# Botocore's own precedence: the service-specific variable first.
_ENDPOINT_VARIABLES: Final = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class PreprocessError(RuntimeError):
    """The job cannot run or its result is unusable; the message says why in one line."""


def output_paths(output: str) -> dict[str, str]:
    """Return the path of every file the job writes under ``output``.

    Args:
        output: Local directory or ``s3://`` prefix.

    Returns:
        Paths keyed by ``"train"``, ``"validation"``, ``"test"``, ``"rejected"``, ``"statistics"`` and
        ``"summary"``.
    """
    output = output.rstrip("/") or "/"
    paths = {split: FileSystems.join(output, split, SPLIT_FILE) for split in SPLITS}
    paths[REJECTED] = FileSystems.join(output, "rejected", REJECTED_FILE)
    paths[STATISTICS] = FileSystems.join(output, *STATISTICS_PATH)
    paths[SUMMARY] = FileSystems.join(output, SUMMARY_FILE)
    return paths


def pipeline_options(beam_args: Sequence[str] = (), environ: dict[str, str] | None = None) -> PipelineOptions:
    """Build the pipeline options: the in-process runner, and the S3 endpoint when one is configured.

    Args:
        beam_args: Extra Beam flags (``--runner`` and ``--s3_endpoint_url`` given here win).
        environ: Environment to read ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` from (default: ``os.environ``).

    Returns:
        Options for ``beam.Pipeline``; also what ``FileSystems`` uses for ``s3://`` paths.
    """
    environ = dict(os.environ) if environ is None else environ
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = RUNNER
    s3 = options.view_as(S3Options)
    endpoint = next((environ[name] for name in _ENDPOINT_VARIABLES if environ.get(name)), None)
    # LocalStack (or any S3-compatible store) is reached the way the AWS CLI and boto3 reach it.
    if endpoint and not s3.s3_endpoint_url:
        s3.s3_endpoint_url = endpoint
    return options


def load_schema(location: str | None) -> DatasetSchema:
    """Load the dataset schema from a local path or ``s3://`` URI, or the packaged AI4I default.

    Raises:
        PreprocessError: If the file cannot be read or is not a valid schema.
    """
    where = location or f"packaged schema {DEFAULT_DATASET!r}"
    try:
        if location is None:
            return DatasetSchema.load()
        return DatasetSchema.from_dict(json.loads(files.read_text(location)))
    except files.InputError as error:
        raise PreprocessError(f"cannot load schema: {error}") from None
    except OSError as error:
        raise PreprocessError(f"cannot load schema {where}: {error}") from None
    except json.JSONDecodeError as error:
        raise PreprocessError(f"schema {where} is not valid JSON: {error}") from None
    except SchemaError as error:
        raise PreprocessError(f"schema {where} is invalid: {error}") from None


def run(argv: Sequence[str] | None = None, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the preprocessing job.

    Args:
        argv: ``--input <path or s3:// URI> --output <dir or s3:// prefix> [--schema <path or URI>]``,
            followed by any Beam pipeline flags.
        echo: Receives one progress line at a time (default: print to stdout).

    Returns:
        The summary written to ``summary.json``: ``input``, ``read``, ``accepted``, ``rejected``,
        ``duplicates``, ``rejections_by_reason`` and ``splits`` (``rows`` and ``positives`` per split).

    Raises:
        PreprocessError: If the input or schema cannot be read, the header does not match the schema,
            or a split has no positive example.
    """
    parser = argparse.ArgumentParser(prog="preprocess", allow_abbrev=False)
    parser.add_argument("--input", required=True, help="raw CSV: local path or s3:// URI")
    parser.add_argument("--output", required=True, help="output directory or s3:// prefix")
    parser.add_argument("--schema", default=None, help="dataset schema JSON (default: packaged AI4I 2020)")
    args, beam_args = parser.parse_known_args(argv)

    options = pipeline_options(beam_args)
    # The header is read before the pipeline is built, so FileSystems needs the S3 options now too.
    FileSystems.set_options(options)
    schema = load_schema(args.schema)
    try:
        header = rows.parse_header(files.read_first_line(args.input), schema)
    except files.InputError as error:
        raise PreprocessError(str(error)) from None
    except rows.HeaderError as error:
        raise PreprocessError(f"{args.input}: {error}") from None
    paths = output_paths(args.output)
    echo(f"preprocess: {args.input}: header has the {len(header)} columns of schema {schema.name!r}")
    echo(f"preprocess: running the Beam pipeline ({options.view_as(StandardOptions).runner})")

    with beam.Pipeline(options=options) as pipeline:
        lines = pipeline | "Read" >> files.ReadNumberedLines(args.input, first_line=2)
        result = lines | "Preprocess" >> Preprocess(header, schema, source=args.input)
        curated_header = rows.format_csv_line(schema.curated_columns)
        for split in SPLITS:
            _ = (
                result[split]
                | f"Format{split.title()}" >> beam.Map(_curated_line, schema.id_column, schema.curated_columns)
                | f"Write{split.title()}" >> files.WriteSortedLines(paths[split], header=curated_header)
            )
        _ = (
            result[REJECTED]
            | "FormatRejected" >> beam.Map(lambda r: (r.line, json.dumps(r.to_json(), ensure_ascii=False)))
            | "WriteRejected" >> files.WriteSortedLines(paths[REJECTED])
        )
        _ = result[STATISTICS] | "WriteStatistics" >> files.WriteJson(paths[STATISTICS])
        _ = result[SUMMARY] | "WriteSummary" >> files.WriteJson(paths[SUMMARY])

    summary: dict[str, Any] = json.loads(files.read_text(paths[SUMMARY]))
    _report(summary, args.output, echo)
    check_counts(summary)
    check_positives(summary, schema)
    return summary


def _curated_line(record: rows.Record, id_column: str, columns: Sequence[str]) -> tuple[Any, str]:
    return record.values[id_column], rows.format_csv_line([record.values[name] for name in columns])


def _report(summary: dict[str, Any], output: str, echo: Callable[[str], None]) -> None:
    echo(
        f"preprocess: read {summary['read']}, accepted {summary['accepted']}, "
        f"rejected {summary['rejected']}, duplicates {summary['duplicates']}"
    )
    if summary["rejections_by_reason"]:
        reasons = ", ".join(f"{reason} {count}" for reason, count in summary["rejections_by_reason"].items())
        echo(f"preprocess: rejections by reason: {reasons}")
    splits = ", ".join(f"{name} {s['rows']} ({s['positives']} positive)" for name, s in summary["splits"].items())
    echo(f"preprocess: splits: {splits}")
    echo(f"preprocess: wrote {output}")


def check_counts(summary: dict[str, Any]) -> None:
    """Fail unless every line read is accounted for: read = accepted + rejected + duplicates = split rows.

    Raises:
        PreprocessError: Naming the counts that disagree (a bug in the job, never bad input).
    """
    outcomes = summary["accepted"] + summary["rejected"] + summary["duplicates"]
    split_rows = sum(split["rows"] for split in summary["splits"].values())
    if summary["read"] != outcomes or summary["accepted"] != split_rows:
        raise PreprocessError(
            f"row counts do not add up: read {summary['read']}, accepted {summary['accepted']} + rejected "
            f"{summary['rejected']} + duplicates {summary['duplicates']} = {outcomes}, split rows {split_rows}"
        )


def check_positives(summary: dict[str, Any], schema: DatasetSchema) -> None:
    """Fail unless every split holds at least one positive label.

    A split without a positive example cannot train, pick a decision threshold or be evaluated (F1,
    PR-AUC), so the job fails rather than hand such data to training.

    Args:
        summary: The job summary (``accepted`` and ``splits`` with ``positives`` are read).
        schema: Names the label in the message.

    Raises:
        PreprocessError: Naming the splits that lack positives.
    """
    lacking = [name for name, split in summary["splits"].items() if split["positives"] == 0]
    if lacking:
        raise PreprocessError(
            f"split(s) {', '.join(lacking)} have no positive {schema.label!r} rows "
            f"(accepted {summary['accepted']} rows); more data or other split fractions are needed"
        )
