"""Read a SageMaker channel of curated CSV files into numpy arrays (csv + numpy only).

A channel directory holds one or more ``*.csv`` files (any depth, read in sorted path order), each
with a header that names at least the schema's curated columns: the id, the features and the label.
Every value is parsed and checked with the schema's own rules; a bad value fails the job with the
file, line and reason, because curated data that does not match the schema means the pipeline is
broken upstream and a model trained on it must not ship.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlkit.schema import DatasetSchema


class ChannelError(ValueError):
    """A channel is missing, empty or holds rows that do not match the schema."""


@dataclass(frozen=True)
class Split:
    """One channel's rows.

    Attributes:
        ids: The id column's values, as text (``str`` of the parsed value).
        features: One array per raw feature, keyed by ``Column.key``: float32 for numbers, str (object) for
            categories; the dtypes the serving signature takes.
        labels: The label column, int64 0/1.
        files: The CSV files read.
    """

    ids: list[str]
    features: dict[str, NDArray[Any]]
    labels: NDArray[np.int64]
    files: list[Path]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def positives(self) -> int:
        """Number of rows with label 1."""
        return int(self.labels.sum())


def channel_files(directory: Path) -> list[Path]:
    """Return the CSV files of a channel in a stable order.

    Raises:
        ChannelError: If the directory does not exist or holds no ``*.csv`` file.
    """
    if not directory.is_dir():
        raise ChannelError(f"channel directory {directory} does not exist")
    files = sorted(p for p in directory.rglob("*.csv") if p.is_file())
    if not files:
        raise ChannelError(f"channel directory {directory} holds no *.csv file")
    return files


def read_split(directory: Path, schema: DatasetSchema) -> Split:
    """Read every CSV file of a channel directory.

    Args:
        directory: The channel directory (``SM_CHANNEL_<NAME>``).
        schema: The dataset schema.

    Returns:
        The rows of all files, in file order then line order.

    Raises:
        ChannelError: For a missing directory, a missing column, a bad value (with file and line) or no rows.
    """
    files = channel_files(directory)
    features = schema.features
    wanted = [schema.column(schema.id_column), *features, schema.column(schema.label)]
    ids: list[str] = []
    values: dict[str, list[float | int | str]] = {c.key: [] for c in features}
    labels: list[int] = []
    for path in files:
        # utf-8-sig: a BOM written by a spreadsheet must not become part of the first column's name.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c.name for c in wanted if c.name not in header]
            if missing:
                raise ChannelError(f"{path}: header lacks column(s) {missing} (header: {header})")
            for row in reader:
                try:
                    record = schema.parse_record(row, wanted)
                except ValueError as error:
                    raise ChannelError(f"{path}:{reader.line_num}: {error}") from None
                ids.append(str(record[schema.id_column]))
                for column in features:
                    values[column.key].append(record[column.name])
                labels.append(int(record[schema.label]))
    if not ids:
        raise ChannelError(f"channel directory {directory} holds no data rows ({len(files)} file(s), headers only)")
    arrays = {
        c.key: np.asarray(values[c.key], dtype=object if c.kind == "categorical" else np.float32) for c in features
    }
    return Split(ids=ids, features=arrays, labels=np.asarray(labels, dtype=np.int64), files=files)
