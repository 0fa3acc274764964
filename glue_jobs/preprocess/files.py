"""The pipeline's only I/O: read an input's lines with their numbers, write whole files.

Everything goes through Beam's ``FileSystems``, so a local path and an ``s3://`` URI work alike (the S3
endpoint comes from the pipeline options; see :func:`glue_jobs.preprocess.pipeline.pipeline_options`).
Outputs are written as single, sorted files with exact names, rather than with ``WriteToText``, because
downstream consumers (training, the stacks) rely on fixed names and reruns must give identical bytes.
"""

# Beam's transform constructors (Map, ParDo, CombinePerKey, ...) and FileSystems carry no annotations,
# and its `|` operator returns Any.
# mypy: disable-error-code="no-untyped-call, no-any-return"

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PBegin, PCollection
from apache_beam.transforms import combiners


class InputError(OSError):
    """The input cannot be read."""


def read_first_line(path: str) -> bytes:
    """Return the first line of a file (the CSV header), without its line ending.

    Raises:
        InputError: If the file does not exist or cannot be read.
    """
    try:
        if not FileSystems.exists(path):
            raise InputError(f"input not found: {path}")
        with FileSystems.open(path) as handle:
            return bytes(handle.readline()).rstrip(b"\r\n")
    except InputError:
        raise
    except OSError as error:  # includes Beam's BeamIOError, e.g. S3 access denied
        raise InputError(f"cannot read input {path}: {error}") from None


def read_text(path: str) -> str:
    """Return a whole (small) UTF-8 file, e.g. a schema or a summary.

    Raises:
        InputError: If the file does not exist or cannot be read.
    """
    try:
        if not FileSystems.exists(path):
            raise InputError(f"file not found: {path}")
        with FileSystems.open(path) as handle:
            return bytes(handle.read()).decode("utf-8")
    except InputError:
        raise
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from None


def write_text(path: str, text: str) -> str:
    """Write a whole UTF-8 file, replacing any previous one, and return its path."""
    data = text.encode("utf-8")
    if not data and FileSystems.get_scheme(path) == "s3":
        _put_empty_s3_object(path)
        return path
    with FileSystems.create(path, mime_type="text/plain") as handle:
        handle.write(data)
    return path


def _put_empty_s3_object(path: str) -> None:
    # Beam's S3 writer always uses a multipart upload and completes it with no parts when nothing was
    # written, which S3 rejects (MalformedXML). An empty object needs a plain PUT. boto3 resolves the
    # endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, e.g. LocalStack) exactly as Beam's client does.
    import boto3  # Beam's own S3 filesystem depends on boto3, so it is there wherever s3:// works

    bucket, _, key = path.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"")


class _ReadNumberedLinesFn(beam.DoFn):
    def __init__(self, first_line: int) -> None:
        super().__init__()
        self._first_line = first_line

    def process(self, path: str) -> Iterator[tuple[int, bytes]]:
        # Lines stay bytes: decoding is a per-row check (a bad byte rejects its row, not the whole job).
        # Reading line by line keeps memory flat whatever the file size.
        with FileSystems.open(path) as handle:
            number = 0
            while line := handle.readline():
                number += 1
                if number >= self._first_line:
                    yield number, bytes(line).rstrip(b"\n")


class ReadNumberedLines(beam.PTransform[PBegin, PCollection[tuple[int, bytes]]]):
    """Read a text file as ``(line number, line bytes)`` pairs, numbered from 1, line endings removed.

    Args:
        path: Local path or ``s3://`` URI (``.gz`` and ``.bz2`` are decompressed by extension).
        first_line: Number of the first line to emit; ``2`` skips a header.
    """

    def __init__(self, path: str, first_line: int = 1) -> None:
        super().__init__()
        self._path = path
        self._first_line = first_line

    def expand(self, begin: PBegin) -> PCollection[tuple[int, bytes]]:
        """Emit the file's lines."""
        return (
            begin
            | "InputPath" >> beam.Create([self._path])
            | "ReadLines" >> beam.ParDo(_ReadNumberedLinesFn(self._first_line))
        )


class WriteSortedLines(beam.PTransform[PCollection[tuple[Any, str]], PCollection[str]]):
    """Write ``(sort key, line text)`` pairs to one file, sorted by key, after an optional header line.

    The file is written even when the input is empty (then it holds just the header), so every
    expected output exists after a run. Returns a single-element PCollection of the written path.

    Args:
        path: Local path or ``s3://`` URI of the file to (over)write.
        header: First line of the file, or ``None``.
    """

    def __init__(self, path: str, header: str | None = None) -> None:
        super().__init__()
        self._path = path
        self._header = header

    def expand(self, pairs: PCollection[tuple[Any, str]]) -> PCollection[str]:
        """Gather, sort and write the lines."""
        # One file is written by one worker anyway, so gathering its lines in one place costs nothing extra.
        return (
            pairs
            | "Gather" >> combiners.ToList()
            | "Write" >> beam.Map(_write_sorted, path=self._path, header=self._header)
        )


class WriteJson(beam.PTransform[PCollection[dict[str, Any]], PCollection[str]]):
    """Write a single-element ``PCollection[dict]`` as an indented JSON file; returns the path."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def expand(self, document: PCollection[dict[str, Any]]) -> PCollection[str]:
        """Write the document."""
        return document | "Write" >> beam.Map(
            lambda value, path: write_text(path, json.dumps(value, indent=2) + "\n"), path=self._path
        )


def _write_sorted(pairs: Iterable[tuple[Any, str]], path: str, header: str | None) -> str:
    lines = [line for _, line in sorted(pairs, key=lambda pair: pair[0])]
    if header is not None:
        lines.insert(0, header)
    return write_text(path, "".join(f"{line}\n" for line in lines))
