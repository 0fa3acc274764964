"""Feature engineering in TF ops (training/features.py): every derived-feature op, and AI4I physics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from mlkit.schema import DERIVED_OPS, DatasetSchema
from training.features import (
    CATEGORICAL,
    NUMERIC,
    categorical_feature_names,
    decimal_value,
    engineer,
    input_signature,
    numeric_feature_names,
)

pytestmark = pytest.mark.unit

OPS_SCHEMA = {
    "name": "ops",
    "id_column": "id",
    "label": "y",
    "columns": [
        {"name": "id", "kind": "integer"},
        {"name": "a", "kind": "numeric", "feature": True},
        {"name": "b [x]", "kind": "integer", "feature": True},
        {"name": "kind", "kind": "categorical", "categories": ["p", "q"], "feature": True},
        {"name": "y", "kind": "binary"},
    ],
    "derived_features": [
        {"name": "diff", "op": "subtract", "args": ["a", "b [x]"]},
        {"name": "scaled_product", "op": "multiply", "args": ["a", "b [x]"], "factor": 0.5},
        {"name": "ratio", "op": "divide", "args": ["a", "b [x]"]},
        {"name": "weight", "op": "lookup", "args": ["kind"], "table": {"p": 2.0, "q": 3.0}},
        {"name": "small", "op": "less_than", "args": ["a"], "value": 1.0},
        {"name": "large", "op": "greater_than", "args": ["a"], "value": 1.0},
        {"name": "inside", "op": "between", "args": ["a"], "low": 1.0, "high": 2.0},
        {"name": "away", "op": "outside", "args": ["a"], "low": 1.0, "high": 2.0},
        {"name": "weighted_ratio", "op": "multiply", "args": ["ratio", "weight"]},
    ],
}


@pytest.fixture(scope="module")
def ops_schema() -> DatasetSchema:
    return DatasetSchema.from_dict(OPS_SCHEMA)


def _engineer(schema: DatasetSchema, columns: dict[str, list]) -> dict[str, np.ndarray]:
    specs = input_signature(schema)
    inputs = {key: tf.constant(values, dtype=specs[key].dtype) for key, values in columns.items()}
    return {name: block.numpy() for name, block in engineer(inputs, schema).items()}


def test_every_schema_op_is_covered_here() -> None:
    assert {d["op"] for d in OPS_SCHEMA["derived_features"]} == set(DERIVED_OPS)


def test_input_signature_is_keyed_by_column_key(schema: DatasetSchema) -> None:
    specs = input_signature(schema)
    assert list(specs) == [c.key for c in schema.features]
    for column in schema.features:
        spec = specs[column.key]
        assert spec.shape.as_list() == [None]
        assert spec.dtype == (tf.string if column.kind == "categorical" else tf.float32)


def test_each_op(ops_schema: DatasetSchema) -> None:
    a = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    b = [1, 2, 0, 4, 1, 2]
    kind = ["p", "q", " q ", "p", "r", "q"]  # whitespace is stripped; "r" is unknown
    blocks = _engineer(ops_schema, {"a": a, "b_x": b, "kind": kind})
    assert numeric_feature_names(ops_schema) == [
        "a",
        "b_x",
        *(d["name"] for d in OPS_SCHEMA["derived_features"]),
    ]
    got = dict(zip(numeric_feature_names(ops_schema), blocks[NUMERIC].T, strict=True))
    a64, b64 = np.array(a), np.array(b, float)
    weight = np.array([2.0, 3.0, 3.0, 2.0, 0.0, 3.0])  # unknown category looks up as 0
    ratio = np.array([x / y if y else 0.0 for x, y in zip(a64, b64, strict=True)])  # x/0 -> 0, not inf
    expected = {
        "a": a64,
        "b_x": b64,
        "diff": a64 - b64,
        "scaled_product": a64 * b64 * 0.5,
        "ratio": ratio,
        "weight": weight,
        "small": (a64 < 1).astype(float),
        "large": (a64 > 1).astype(float),
        "inside": ((a64 >= 1) & (a64 <= 2)).astype(float),  # inclusive at both ends
        "away": ((a64 < 1) | (a64 > 2)).astype(float),
        "weighted_ratio": ratio * weight,
    }
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-6, err_msg=name)
    assert blocks[NUMERIC].dtype == np.float32
    assert categorical_feature_names(ops_schema) == ["kind=p", "kind=q"]
    np.testing.assert_array_equal(blocks[CATEGORICAL], [[1, 0], [0, 1], [0, 1], [1, 0], [0, 0], [0, 1]])


def test_decimal_value_recovers_what_float32_cannot_hold() -> None:
    decimals = [312.3, 303.7, 308.6, 300.0, 8.6, 42.8, 1551.0, -1.25, 0.0, 0.001234, 99999.9]
    recovered = decimal_value(tf.constant(decimals, tf.float32)).numpy()
    assert recovered.dtype == np.float64
    assert recovered.tolist() == decimals  # bit-exact float64 of each decimal
    special = decimal_value(tf.constant([math.inf, -math.inf, math.nan], tf.float32)).numpy()
    assert special[0] == math.inf and special[1] == -math.inf and math.isnan(special[2])


def test_ai4i_physics_features_match_the_dataset_rules(schema: DatasetSchema) -> None:
    # Row 0 sits exactly on the heat-dissipation limit: 308.6 - 300.0 is 8.6000000000000227 in float64
    # decimals (no failure) but 8.5999756 in float32 arithmetic (a false "failure").
    rows = {
        "Type": ["L", "M", "H", "L"],
        "Air temperature [K]": [300.0, 298.1, 302.0, 299.0],
        "Process temperature [K]": [308.6, 308.6, 310.0, 309.2],
        "Rotational speed [rpm]": [1300.0, 1551.0, 2800.0, 1200.0],
        "Torque [Nm]": [40.0, 42.8, 3.8, 70.1],
        "Tool wear [min]": [100.0, 210.0, 240.0, 160.0],
    }
    columns = {schema.column(name).key: values for name, values in rows.items()}
    blocks = _engineer(schema, columns)
    got = dict(zip(numeric_feature_names(schema), blocks[NUMERIC].T, strict=True))

    air, process = np.array(rows["Air temperature [K]"]), np.array(rows["Process temperature [K]"])
    speed, torque = np.array(rows["Rotational speed [rpm]"]), np.array(rows["Torque [Nm]"])
    wear = np.array(rows["Tool wear [min]"])
    limit = np.array([{"L": 11000.0, "M": 12000.0, "H": 13000.0}[t] for t in rows["Type"]])
    power = torque * speed * 2 * np.pi / 60
    expected = {
        "temperature_difference_k": process - air,
        "power_w": power,
        "power_outside_limits": ((power < 3500) | (power > 9000)).astype(float),
        "strain_min_nm": wear * torque,
        "strain_limit_min_nm": limit,
        "strain_ratio": wear * torque / limit,
        "small_temperature_difference": (process - air < 8.6).astype(float),
        "low_speed": (speed < 1380).astype(float),
        "heat_dissipation_risk": ((process - air < 8.6) & (speed < 1380)).astype(float),
        "tool_wear_window": ((wear >= 200) & (wear <= 240)).astype(float),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-6, err_msg=name)
    assert got["heat_dissipation_risk"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert got["power_outside_limits"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert blocks[CATEGORICAL].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]
