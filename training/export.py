"""Export the model for the SageMaker TensorFlow Serving container, and call the exported signature.

``SM_MODEL_DIR`` becomes, once SageMaker tars it into ``model.tar.gz``::

    1/saved_model.pb, 1/variables/...   SavedModel; signature ``serving_default`` takes RAW feature values
    code/inference.py                   the container's input_handler/output_handler
    code/schema.json                    the dataset schema the model was trained with
    code/lib/mlkit/{__init__,schema}.py the stdlib-only schema module (the container puts code/lib on the path)
    evaluation.json                     written by train.py

The serving signature runs :func:`training.features.engineer` (the same function training used), the
Keras network, and the decision threshold, which is a constant of the graph: ``label`` is
``probability >= threshold``, so every consumer of the model applies the threshold chosen in training.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from mlkit.schema import DatasetSchema
from training.features import engineer, input_signature

SIGNATURE_NAME = "serving_default"
PROBABILITY = "probability"
LABEL = "label"


class ExportError(RuntimeError):
    """The model or its serving code could not be exported, or the export does not behave like the model."""


class ServingModule(tf.Module):  # type: ignore[misc]  # tensorflow ships no type stubs: tf.Module is Any
    """Raw feature values in, ``probability`` and thresholded ``label`` out.

    Args:
        schema: The dataset schema (fixes the signature's inputs and the feature engineering).
        model: The trained network taking :func:`~training.features.engineer`'s blocks.
        threshold: Decision threshold; baked into the graph as a constant.
    """

    def __init__(self, schema: DatasetSchema, model: keras.Model, threshold: float) -> None:
        super().__init__(name="serving")
        self._schema = schema
        self.model = model  # an attribute, so that tf.saved_model tracks and saves its variables
        self._threshold = float(threshold)
        self.serve = tf.function(self._serve, input_signature=[input_signature(schema)])

    def _serve(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        blocks = engineer(inputs, self._schema)
        probability = tf.reshape(tf.cast(self.model(blocks, training=False), tf.float32), [-1])
        label = tf.cast(probability >= tf.constant(self._threshold, tf.float32), tf.int64)
        return {PROBABILITY: probability, LABEL: label}


def export_saved_model(schema: DatasetSchema, model: keras.Model, threshold: float, export_dir: Path) -> Path:
    """Write the SavedModel with its ``serving_default`` signature to ``export_dir`` (e.g. ``model/1``).

    Returns:
        ``export_dir``.
    """
    if export_dir.exists():
        shutil.rmtree(export_dir)
    module = ServingModule(schema, model, threshold)
    tf.saved_model.save(module, str(export_dir), signatures={SIGNATURE_NAME: module.serve.get_concrete_function()})
    return export_dir


@dataclass(frozen=True)
class ExportedModel:
    """A reloaded SavedModel and its serving signature.

    Attributes:
        root: The object ``tf.saved_model.load`` returned. It owns the variables, so it is kept alive
            as long as the signature is used (a signature outliving it reads deleted variables).
        signature: The ``serving_default`` concrete function.
    """

    root: Any
    signature: Any

    def predict(self, features: Mapping[str, NDArray[Any]], batch_size: int = 4096) -> dict[str, NDArray[Any]]:
        """Call the serving signature on raw feature arrays, in batches.

        Args:
            features: One array per raw feature keyed by ``Column.key`` (``Split.features``).
            batch_size: Rows per call.

        Returns:
            ``{"probability": float32 [n], "label": int64 [n]}``.
        """
        specs = self.signature.structured_input_signature[1]
        rows = len(next(iter(features.values())))
        parts: dict[str, list[NDArray[Any]]] = {PROBABILITY: [np.zeros(0, np.float32)], LABEL: [np.zeros(0, np.int64)]}
        for start in range(0, rows, batch_size):
            batch = {
                key: tf.constant(features[key][start : start + batch_size], dtype=spec.dtype)
                for key, spec in specs.items()
            }
            outputs = self.signature(**batch)
            for name, part in parts.items():
                part.append(outputs[name].numpy())
        return {name: np.concatenate(part) for name, part in parts.items()}


def load_exported(export_dir: Path) -> ExportedModel:
    """Reload an exported SavedModel the way a server does and return its serving signature."""
    root = tf.saved_model.load(str(export_dir))
    return ExportedModel(root=root, signature=root.signatures[SIGNATURE_NAME])
