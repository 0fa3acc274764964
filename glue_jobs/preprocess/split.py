"""Deterministic train/validation/test split from a salted hash of each row's id.

The split of a row depends only on its id and the schema's salt, never on row order, bundle boundaries,
worker count or the machine, so reruns (and reruns with more data) keep every row in the same split.
"""

# Beam's transform constructors (Map, ParDo, CombinePerKey, ...) carry no annotations, and its `|`
# operator returns Any.
# mypy: disable-error-code="no-untyped-call, no-any-return"

from __future__ import annotations

import hashlib
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import PCollection

from glue_jobs.preprocess.rows import Record
from mlkit.schema import SPLITS, DatasetSchema, SplitConfig

# 2**64 buckets: 8 bytes of the digest, far finer than any split fraction needs.
_HASH_BYTES = 8
_BUCKETS = float(2 ** (8 * _HASH_BYTES))


def split_fraction(id_value: Any, salt: str) -> float:
    """Map an id to a number in ``[0, 1)``, uniformly and stably.

    Args:
        id_value: The parsed id (its ``str()`` is hashed, so ``42`` and ``"42"`` land together).
        salt: The schema's split salt; changing it reshuffles every row.

    Returns:
        ``sha256(salt + ":" + id)`` read as a fraction.
    """
    digest = hashlib.sha256(f"{salt}:{id_value}".encode()).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") / _BUCKETS


def assign_split(id_value: Any, config: SplitConfig) -> str:
    """Return ``"train"``, ``"validation"`` or ``"test"`` for an id.

    Args:
        id_value: The parsed id of the row.
        config: Split fractions and salt from the schema.
    """
    fraction = split_fraction(id_value, config.salt)
    upper = 0.0
    fractions = config.fractions()
    for name in SPLITS[:-1]:
        upper += fractions[name]
        if fraction < upper:
            return name
    # The last split takes the rest, so rounding in the fractions' sum can never leave a row unassigned.
    return SPLITS[-1]


class AssignSplits(beam.PTransform[PCollection[Record], PCollection[tuple[str, Record]]]):
    """``PCollection[Record]`` -> ``PCollection[(split name, Record)]``, using the schema's id and split."""

    def __init__(self, schema: DatasetSchema) -> None:
        super().__init__()
        self._id_column = schema.id_column
        self._config = schema.split

    def expand(self, records: PCollection[Record]) -> PCollection[tuple[str, Record]]:
        """Key every record by its split."""
        id_column, config = self._id_column, self._config
        return records | "KeyBySplit" >> beam.Map(
            lambda record: (assign_split(record.values[id_column], config), record)
        )
