"""The Keras network: normalisation fitted on the training split, then a small MLP with a sigmoid output.

The network takes the engineered blocks of :func:`training.features.engineer` (``numeric`` and, if the
schema has categorical features, ``categorical``). The numeric block passes through a ``Normalization``
layer adapted on the training split, so the fitted means and variances are variables of the model and
travel with the exported SavedModel; the one-hot block is used as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from numpy.typing import NDArray

from training.features import CATEGORICAL, NUMERIC


def build_model(
    train_features: Mapping[str, NDArray[np.float32]],
    *,
    hidden_units: Sequence[int],
    dropout: float,
    l2: float,
    learning_rate: float,
    positive_rate: float,
) -> keras.Model:
    """Build and compile the classifier.

    Args:
        train_features: The engineered training blocks (``numeric`` ``[n, f]``, optional ``categorical``).
            The normalisation statistics are fitted on ``numeric``.
        hidden_units: Width of each hidden layer, e.g. ``(128, 64)``.
        dropout: Dropout rate after each hidden layer (0 disables it).
        l2: L2 weight penalty of the hidden layers (0 disables it).
        learning_rate: Adam's learning rate.
        positive_rate: Fraction of positive training labels; the output bias starts at its log-odds so
            early epochs do not spend their steps learning the base rate.

    Returns:
        A compiled model taking ``{"numeric": ..., "categorical": ...}`` and returning ``[n, 1]``
        probabilities.
    """
    numeric_train = np.asarray(train_features[NUMERIC], dtype=np.float32)
    numeric = keras.Input(shape=(numeric_train.shape[1],), name=NUMERIC)
    normalization = keras.layers.Normalization(name="normalization")
    normalization.adapt(numeric_train)
    inputs = {NUMERIC: numeric}
    blocks = [normalization(numeric)]
    if CATEGORICAL in train_features:
        categorical = keras.Input(shape=(train_features[CATEGORICAL].shape[1],), name=CATEGORICAL)
        inputs[CATEGORICAL] = categorical
        blocks.append(categorical)
    x = keras.layers.Concatenate(name="features")(blocks) if len(blocks) > 1 else blocks[0]
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"hidden_{index}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    rate = min(max(positive_rate, 1e-6), 1 - 1e-6)
    output = keras.layers.Dense(
        1,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(float(np.log(rate / (1 - rate)))),
        name="probability",
    )(x)
    model = keras.Model(inputs=inputs, outputs=output, name="classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(curve="PR", name="pr_auc"), keras.metrics.AUC(name="roc_auc")],
    )
    return model


def class_weights(labels: NDArray[np.int64], mode: str) -> dict[int, float] | None:
    """Return Keras class weights for an imbalanced binary label.

    Args:
        labels: Training labels (0/1).
        mode: ``balanced`` (each class weighs half of the total), ``sqrt`` (the square root of the
            balanced ratio: a milder correction that keeps probabilities better calibrated), ``none``,
            or a number: the weight of the positive class relative to 1.0 for the negative class.

    Returns:
        ``{0: w0, 1: w1}``, or ``None`` for ``none``.

    Raises:
        ValueError: For an unknown mode.
    """
    total = labels.size
    positives = int(labels.sum())
    negatives = total - positives
    if mode == "none" or positives == 0 or negatives == 0:
        return None
    if mode == "balanced":
        return {0: total / (2.0 * negatives), 1: total / (2.0 * positives)}
    if mode == "sqrt":
        return {0: 1.0, 1: float(np.sqrt(negatives / positives))}
    try:
        weight = float(mode)
    except ValueError:
        raise ValueError(f"class weight must be balanced, sqrt, none or a number, got {mode!r}") from None
    if weight <= 0:
        raise ValueError(f"positive class weight must be positive, got {weight}")
    return {0: 1.0, 1: weight}
