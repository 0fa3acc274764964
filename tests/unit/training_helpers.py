"""Small synthetic AI4I-like splits for the training tests (the real data is for the slow test only).

Rows follow the dataset's published generation rules (heat dissipation, power and overstrain
failures), so a few epochs learn something, but the tests never rely on model quality.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping
from pathlib import Path

from glue_jobs.preprocess.split import assign_split
from mlkit.schema import SPLITS, DatasetSchema

STRAIN_LIMITS = {"L": 11000.0, "M": 12000.0, "H": 13000.0}


def synthetic_rows(count: int, seed: int = 0, start_id: int = 1) -> list[dict[str, str]]:
    """Return ``count`` raw AI4I rows (all columns, as CSV text) with rule-based failure labels."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        kind = rng.choices(("L", "M", "H"), weights=(6, 3, 1))[0]
        air = round(rng.gauss(300.0, 2.0), 1)
        process = round(air + 10.0 + rng.gauss(0.0, 1.0), 1)
        speed = max(1200, round(rng.gauss(1500.0, 160.0)))
        torque = round(min(max(rng.gauss(40.0, 10.0), 4.0), 76.0), 1)
        wear = rng.randrange(0, 250)
        power = torque * speed * 0.10471975511965977
        hdf = process - air < 8.6 and speed < 1380
        pwf = power < 3500 or power > 9000
        osf = wear * torque > STRAIN_LIMITS[kind]
        failure = hdf or pwf or osf or rng.random() < 0.002
        rows.append(
            {
                "UDI": str(start_id + index),
                "Product ID": f"{kind}{10000 + index}",
                "Type": kind,
                "Air temperature [K]": f"{air:.1f}",
                "Process temperature [K]": f"{process:.1f}",
                "Rotational speed [rpm]": str(speed),
                "Torque [Nm]": f"{torque:.1f}",
                "Tool wear [min]": str(wear),
                "Machine failure": str(int(failure)),
                "TWF": "0",
                "HDF": str(int(hdf)),
                "PWF": str(int(pwf)),
                "OSF": str(int(osf)),
                "RNF": "0",
            }
        )
    return rows


def write_csv(path: Path, rows: Iterable[Mapping[str, str]], columns: list[str]) -> Path:
    """Write ``rows`` (only ``columns``) as CSV with a header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_channels(
    root: Path, schema: DatasetSchema, sizes: Mapping[str, int] | None = None, seed: int = 0
) -> dict[str, Path]:
    """Write curated ``train``/``validation``/``test`` channel directories of synthetic rows.

    The training channel is split over two files, as a Beam job with several shards writes it.
    """
    sizes = dict(sizes or {"train": 800, "validation": 300, "test": 300})
    channels = {}
    next_id = 1
    for offset, (name, count) in enumerate(sizes.items()):
        rows = synthetic_rows(count, seed=seed * 10 + offset, start_id=next_id)
        next_id += count
        directory = root / name
        if name == "train":
            half = count // 2
            write_csv(directory / "part-00000-of-00002.csv", rows[:half], schema.curated_columns)
            write_csv(directory / "part-00001-of-00002.csv", rows[half:], schema.curated_columns)
        else:
            write_csv(directory / "part-00000-of-00001.csv", rows, schema.curated_columns)
        channels[name] = directory
    return channels


def hash_split(source: Path, root: Path, schema: DatasetSchema) -> dict[str, Path]:
    """Split a raw CSV with the preprocessing job's own deterministic split function.

    Returns:
        Channel name -> directory holding one curated CSV.
    """
    with source.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    id_column = schema.column(schema.id_column)
    buckets: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
    for row in rows:
        buckets[assign_split(id_column.parse(row[schema.id_column]), schema.split)].append(row)
    return {
        name: write_csv(root / name / "part-00000.csv", bucket, schema.curated_columns).parent
        for name, bucket in buckets.items()
    }
