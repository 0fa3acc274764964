"""Feature engineering as TensorFlow ops: the one function shared by training and serving.

:func:`engineer` turns raw feature values (keyed by :attr:`mlkit.schema.Column.key`) into the model's
dense inputs: the raw numeric columns plus the schema's derived features, and a one-hot encoding of
each categorical column. Training calls it on the training splits; the exported SavedModel calls it
inside its serving signature. Because both run this same graph code, there is no training/serving skew.

Every op in :data:`mlkit.schema.DERIVED_OPS` is implemented here with stateless TF ops (no lookup-table
resources), so the exported graph needs nothing but its variables.

Numbers arrive as float32 (the serving contract), which cannot hold most decimals: a sensor's 312.3
becomes 312.29998779. Indicator features compare differences and products of such values against
limits (``process - air < 8.6``), and float32 error flips them exactly at the limits, where the labels
of rule-generated data such as AI4I were computed on the decimals in float64. :func:`engineer` therefore
recovers each input's decimal value in float64 (:data:`SIGNIFICANT_DIGITS` significant digits, which
float32 round-trips exactly) and computes the derived features in float64 before handing float32 to the
network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from mlkit.schema import DERIVED_OPS, DatasetSchema, DerivedFeature

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: Significant decimal digits recovered from float32 inputs; float32 round-trips any 6-digit decimal.
SIGNIFICANT_DIGITS = 6


def input_signature(schema: DatasetSchema) -> dict[str, tf.TensorSpec]:
    """Return the serving inputs: one ``[None]`` tensor per raw feature, keyed by ``Column.key``.

    Numeric and integer columns are ``float32``; categorical columns are ``tf.string``.
    """
    return {
        c.key: tf.TensorSpec([None], tf.string if c.kind == "categorical" else tf.float32, name=c.key)
        for c in schema.features
    }


def numeric_feature_names(schema: DatasetSchema) -> list[str]:
    """Names of the columns of the ``numeric`` block: raw numeric keys, then derived features in order."""
    return [c.key for c in schema.numeric_features] + [d.name for d in schema.derived_features]


def categorical_feature_names(schema: DatasetSchema) -> list[str]:
    """Names of the columns of the one-hot ``categorical`` block, ``<key>=<category>``."""
    return [f"{c.key}={category}" for c in schema.categorical_features for category in c.categories]


def engineer(inputs: Mapping[str, tf.Tensor], schema: DatasetSchema) -> dict[str, tf.Tensor]:
    """Compute the model's dense inputs from raw feature values.

    Args:
        inputs: One ``[batch]`` tensor per raw feature, keyed by ``Column.key`` (see :func:`input_signature`).
        schema: The dataset schema naming the features and the derived-feature definitions.

    Returns:
        ``{"numeric": [batch, n] float32}`` (see :func:`numeric_feature_names`) and, when the schema has
        categorical features, ``{"categorical": [batch, m] float32}`` one-hot (an unknown category encodes
        as all zeros; the inference handler rejects those before they reach the model).
    """
    values: dict[str, tf.Tensor] = {}
    for column in schema.numeric_features:
        values[column.name] = decimal_value(tf.reshape(inputs[column.key], [-1]))
    for column in schema.categorical_features:
        values[column.name] = tf.strings.strip(tf.reshape(inputs[column.key], [-1]))
    for feature in schema.derived_features:
        values[feature.name] = derive(feature, values)

    numeric = [values[c.name] for c in schema.numeric_features] + [values[d.name] for d in schema.derived_features]
    outputs = {NUMERIC: tf.cast(tf.stack(numeric, axis=1), tf.float32)}
    one_hot = [
        tf.cast(tf.equal(values[c.name], category), tf.float32)
        for c in schema.categorical_features
        for category in c.categories
    ]
    if one_hot:
        outputs[CATEGORICAL] = tf.stack(one_hot, axis=1)
    return outputs


def decimal_value(values: tf.Tensor) -> tf.Tensor:
    """Return ``values`` as float64, rounded to the nearest decimal of :data:`SIGNIFICANT_DIGITS` digits.

    ``float32(312.3)`` is 312.2999877..., and becomes ``float64(312.3)`` again. The scaling uses exact
    powers of ten from a table (``10.0**k`` is exact in float64 for ``k <= 22``) and one multiplication
    or division each way, so the result is the correctly rounded float64 of the decimal. Zero, inf and
    nan pass through unchanged.
    """
    x = tf.cast(values, tf.float64)
    regular = tf.math.is_finite(x) & tf.not_equal(x, 0.0)
    magnitude = tf.floor(
        tf.math.log(tf.where(regular, tf.abs(x), tf.ones_like(x))) / tf.math.log(tf.constant(10.0, tf.float64))
    )
    shift = tf.cast(SIGNIFICANT_DIGITS - 1 - magnitude, tf.int32)  # decimal places to keep (negative: tens...)
    powers = tf.constant([10.0**k for k in range(23)], tf.float64)
    up = tf.gather(powers, tf.clip_by_value(shift, 0, 22))  # exactly one of up/down is 1.0
    down = tf.gather(powers, tf.clip_by_value(-shift, 0, 22))
    rounded = tf.round(x * up / down) / up * down
    return tf.where(regular, rounded, x)


def derive(feature: DerivedFeature, values: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Evaluate one derived feature from already computed values (raw columns by name, earlier features).

    Indicator ops yield 1.0 or 0.0; ``between`` is inclusive at both ends and ``outside`` is its
    complement. ``divide`` yields 0.0 for a zero denominator rather than inf, which a network cannot use.
    An optional ``factor`` parameter scales the result of any op.
    """
    if feature.op not in _OPS:
        raise ValueError(f"derived feature {feature.name!r}: op {feature.op!r} is not implemented")
    args = [values[name] for name in feature.args]
    result = _OPS[feature.op](args, feature.params)
    if "factor" in feature.params:
        result = result * float(feature.params["factor"])
    return tf.cast(result, tf.float64)


def _indicator(condition: tf.Tensor) -> tf.Tensor:
    return tf.cast(condition, tf.float64)


def _lookup(args: list[tf.Tensor], params: Mapping[str, Any]) -> tf.Tensor:
    # A where-chain over the (few) categories instead of a hash table keeps the graph free of resources.
    result = tf.zeros_like(args[0], dtype=tf.float64)
    for category, value in params["table"].items():
        result = tf.where(tf.equal(args[0], str(category)), tf.constant(float(value), tf.float64), result)
    return result


_OPS: dict[str, Callable[[list[tf.Tensor], Mapping[str, Any]], tf.Tensor]] = {
    "subtract": lambda a, p: a[0] - a[1],
    "multiply": lambda a, p: a[0] * a[1],
    "divide": lambda a, p: tf.math.divide_no_nan(a[0], a[1]),
    "lookup": _lookup,
    "less_than": lambda a, p: _indicator(a[0] < float(p["value"])),
    "greater_than": lambda a, p: _indicator(a[0] > float(p["value"])),
    "between": lambda a, p: _indicator((a[0] >= float(p["low"])) & (a[0] <= float(p["high"]))),
    "outside": lambda a, p: _indicator((a[0] < float(p["low"])) | (a[0] > float(p["high"]))),
}

# A new op in the schema module must come with its TF implementation; fail at import, not mid-training.
if set(_OPS) != set(DERIVED_OPS):
    raise ImportError(f"training.features implements {sorted(_OPS)} but the schema defines {sorted(DERIVED_OPS)}")
