"""Reading curated CSV channels (training/data.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from training_helpers import synthetic_rows, write_channels, write_csv

from mlkit.schema import DatasetSchema
from training.data import ChannelError, read_split

pytestmark = pytest.mark.unit


def test_reads_every_file_of_a_channel(tmp_path: Path, schema: DatasetSchema) -> None:
    channels = write_channels(tmp_path, schema, {"train": 40, "validation": 10, "test": 10})
    split = read_split(channels["train"], schema)
    assert len(split) == 40
    assert len(split.files) == 2
    assert split.ids == [str(i) for i in range(1, 41)]  # file order, then line order
    assert set(split.features) == {c.key for c in schema.features}
    for column in schema.features:
        values = split.features[column.key]
        assert values.dtype == (object if column.kind == "categorical" else np.float32)
        assert len(values) == 40
    assert split.labels.dtype == np.int64
    assert split.positives == int(split.labels.sum())


def test_extra_columns_any_order_and_a_bom_are_fine(tmp_path: Path, schema: DatasetSchema) -> None:
    rows = synthetic_rows(5)
    columns = list(reversed(schema.column_names))  # all raw columns, reversed
    path = write_csv(tmp_path / "c" / "data.csv", rows, columns)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    split = read_split(tmp_path / "c", schema)
    assert split.ids == ["1", "2", "3", "4", "5"]
    key = schema.column(schema.features[1].name).key
    assert split.features[key][0] == np.float32(rows[0][schema.features[1].name])


def test_missing_column_is_named(tmp_path: Path, schema: DatasetSchema) -> None:
    dropped = schema.features[0].name
    write_csv(tmp_path / "c" / "a.csv", synthetic_rows(3), [c for c in schema.curated_columns if c != dropped])
    with pytest.raises(ChannelError, match=f"lacks column.*{dropped}"):
        read_split(tmp_path / "c", schema)


def test_bad_value_names_file_and_line(tmp_path: Path, schema: DatasetSchema) -> None:
    rows = synthetic_rows(4)
    numeric = schema.numeric_features[0].name
    rows[2][numeric] = "hot"
    path = write_csv(tmp_path / "c" / "a.csv", rows, schema.curated_columns)
    with pytest.raises(ChannelError, match=rf"a\.csv:4: .*{re.escape(numeric)}.*must be a number"):
        read_split(path.parent, schema)


def test_empty_or_missing_channels(tmp_path: Path, schema: DatasetSchema) -> None:
    with pytest.raises(ChannelError, match="does not exist"):
        read_split(tmp_path / "absent", schema)
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "README").write_text("no csv here")
    with pytest.raises(ChannelError, match=r"no \*\.csv"):
        read_split(tmp_path / "none", schema)
    write_csv(tmp_path / "header" / "a.csv", [], schema.curated_columns)
    with pytest.raises(ChannelError, match="no data rows"):
        read_split(tmp_path / "header", schema)
