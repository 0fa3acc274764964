"""A tiny model with the kit's model contract, for tests of anything that serves ``model.tar.gz``.

:func:`build_model_dir` writes what a training job leaves in ``SM_MODEL_DIR``: ``1/`` (a SavedModel
whose ``serving_default`` takes one ``[None]`` tensor per feature, keyed by ``Column.key``, float32
for numbers and string for categories, and returns ``probability`` float32 and ``label`` int64),
``code/inference.py``, ``code/schema.json``, ``code/lib/mlkit/{__init__,schema}.py`` and
``evaluation.json``. The model is a fixed logistic function of the raw values, so tests can compute
the expected answer with :func:`expected_probability`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlkit.packaging import pack_model_dir
from mlkit.schema import Column, DatasetSchema
from training.serving_code import write_serving_code

THRESHOLD = 0.5


def _weight(index: int) -> float:
    return (0.25 if index % 2 == 0 else -0.25) / (index + 1)


def _centre_and_scale(column: Column) -> tuple[float, float]:
    low = column.minimum if column.minimum is not None else 0.0
    high = column.maximum if column.maximum is not None else low + 1.0
    return (low + high) / 2.0, max(high - low, 1.0) / 10.0


def expected_probability(schema: DatasetSchema, record: Mapping[str, Any]) -> float:
    """The probability the test model gives a record of raw values keyed by column name."""
    z = 0.0
    for index, column in enumerate(schema.features):
        value = column.parse(record[column.name])
        if column.kind == "categorical":
            z += 0.5 * column.categories.index(str(value))
        else:
            centre, scale = _centre_and_scale(column)
            z += _weight(index) * (float(value) - centre) / scale
    return 1.0 / (1.0 + math.exp(-z))


def build_model_dir(
    model_dir: Path,
    schema: DatasetSchema,
    *,
    version: str = "1",
    code: bool = True,
    inference_script: Path | None = None,
) -> Path:
    """Write a servable model directory with the kit's model contract.

    Args:
        model_dir: Directory to fill (created).
        schema: Fixes the signature's inputs.
        version: Name of the version directory (tests pass invalid ones on purpose).
        code: Whether to write ``code/`` (inference handlers, schema, ``lib``).
        inference_script: Handlers to ship as ``code/inference.py``; the kit's by default.

    Returns:
        ``model_dir``.
    """
    import tensorflow as tf  # heavy: only tests that build a model pay for it

    features = schema.features
    specs = {
        c.key: tf.TensorSpec([None], tf.string if c.kind == "categorical" else tf.float32, name=c.key) for c in features
    }

    class ServingModule(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name="contract_model")
            # A variable, so that the SavedModel has variables/ like a trained model.
            self.bias = tf.Variable(0.0, dtype=tf.float32)
            self.serve = tf.function(self._serve, input_signature=[specs])

        def _serve(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
            z = tf.zeros_like(inputs[features[0].key], dtype=tf.float32) + self.bias
            for index, column in enumerate(features):
                if column.kind == "categorical":
                    levels = tf.constant(list(column.categories))
                    position = tf.argmax(tf.cast(tf.equal(inputs[column.key][:, None], levels), tf.int32), axis=1)
                    z += 0.5 * tf.cast(position, tf.float32)
                else:
                    centre, scale = _centre_and_scale(column)
                    z += _weight(index) * (inputs[column.key] - centre) / scale
            probability = tf.sigmoid(z)
            return {"probability": probability, "label": tf.cast(probability >= THRESHOLD, tf.int64)}

    module = ServingModule()
    tf.saved_model.save(
        module, str(model_dir / version), signatures={"serving_default": module.serve.get_concrete_function()}
    )
    if code:
        write_serving_code(model_dir, schema, inference_script=inference_script)
    (model_dir / "evaluation.json").write_text(json.dumps({"threshold": THRESHOLD}) + "\n", encoding="utf-8")
    return model_dir


def build_model_tar(dest: Path, schema: DatasetSchema, **options: Any) -> Path:
    """Build the test model (see :func:`build_model_dir` for ``options``) and pack it into ``dest``."""
    model_dir = dest.parent / f"{dest.name}.d"
    build_model_dir(model_dir, schema, **options)
    return pack_model_dir(model_dir, dest)
