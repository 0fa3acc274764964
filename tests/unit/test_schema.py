"""The dataset schema: configuration checks and value validation shared by every runtime."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlkit.schema import DatasetSchema, SchemaError, feature_key

pytestmark = pytest.mark.unit


def _mutated(schema: DatasetSchema, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(schema.to_dict())
    change(data)
    return data


def test_default_schema_describes_ai4i(schema: DatasetSchema) -> None:
    assert schema.id_column == "UDI"
    assert schema.label == "Machine failure"
    assert [c.key for c in schema.features] == [
        "type",
        "air_temperature_k",
        "process_temperature_k",
        "rotational_speed_rpm",
        "torque_nm",
        "tool_wear_min",
    ]
    # The failure-mode flags describe the label; feeding them to the model would leak it.
    assert not {"TWF", "HDF", "PWF", "OSF", "RNF"} & {c.name for c in schema.features}
    assert schema.curated_columns[0] == "UDI" and schema.curated_columns[-1] == "Machine failure"


def test_schema_round_trips_through_json(schema: DatasetSchema, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema.to_dict()))
    assert DatasetSchema.load(path) == schema


def test_header_of_real_csv_matches_schema(schema: DatasetSchema, ai4i_csv: Path) -> None:
    header = ai4i_csv.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == schema.column_names


@pytest.mark.parametrize(
    ("column", "raw", "expected"),
    [
        ("Torque [Nm]", " 42.5 ", 42.5),
        ("UDI", "17", 17),
        ("Type", "M", "M"),
        ("Machine failure", "1", 1),
        ("Torque [Nm]", 40, 40.0),
    ],
)
def test_valid_values_parse(schema: DatasetSchema, column: str, raw: Any, expected: Any) -> None:
    value = schema.column(column).parse(raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("column", "raw", "message"),
    [
        ("Torque [Nm]", "", "missing value for 'Torque [Nm]'"),
        ("Torque [Nm]", None, "missing value"),
        ("Torque [Nm]", "abc", "must be a number, got 'abc'"),
        ("Torque [Nm]", "-3", "below the plausible minimum 0"),
        ("Torque [Nm]", "nan", "finite number"),
        ("Torque [Nm]", True, "must be a number"),
        ("Air temperature [K]", "9000", "above the plausible maximum"),
        ("Type", "X", "unknown category 'X' for 'Type' (allowed: L, M, H)"),
        ("UDI", "3.5", "whole number"),
        ("Machine failure", "2", "must be 0 or 1"),
    ],
)
def test_invalid_values_name_the_problem(schema: DatasetSchema, column: str, raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        schema.column(column).parse(raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("label"), "missing the required key 'label'"),
        (lambda d: d.update(label="Type"), "must be a binary column"),
        (lambda d: d.update(id_column="nope"), "id_column 'nope' is not one of the columns"),
        (lambda d: d["columns"].append(dict(d["columns"][0])), "duplicate column names"),
        (lambda d: d["columns"][2].update(kind="colour"), "unknown kind 'colour'"),
        (lambda d: d["columns"][2].pop("categories"), "needs a non-empty 'categories'"),
        (lambda d: d["split"].update(train=0.9), "add up to 1"),
        (lambda d: d["derived_features"][0].update(op="pow"), "unknown op 'pow'"),
        (lambda d: d["derived_features"][0].update(args=["Type", "Torque [Nm]"]), "'Type' is categorical"),
        (lambda d: d["derived_features"][0].update(args=["later"] * 2), "neither a feature column"),
        (lambda d: d["derived_features"][4]["table"].pop("H"), "no entry for categories \\['H'\\]"),
        (lambda d: d["derived_features"][2].pop("low"), "needs parameter"),
        (lambda d: d["derived_features"][1].update(name="torque_nm"), "already used"),
    ],
)
def test_bad_schema_raises_a_clear_error(schema: DatasetSchema, change: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        DatasetSchema.from_dict(_mutated(schema, change))


def test_missing_or_broken_schema_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not found"):
        DatasetSchema.load(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SchemaError, match="not valid JSON"):
        DatasetSchema.load(broken)


def test_feature_key_is_an_identifier() -> None:
    assert feature_key("Rotational speed [rpm]") == "rotational_speed_rpm"
    assert feature_key("2nd sensor") == "f_2nd_sensor"
    with pytest.raises(SchemaError):
        feature_key("[]")
