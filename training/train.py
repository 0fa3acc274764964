"""SageMaker script-mode entry point: train, pick the threshold, export, evaluate the export.

Runs as ``python train.py`` at the root of the extracted ``sourcedir.tar.gz`` (beside the ``training``,
``inference`` and ``mlkit`` packages) and as ``python training/train.py`` in a checkout, so it imports
absolutely. Inside the TensorFlow container only TensorFlow, Keras and numpy are assumed.

Steps:
    1. Read the ``train``/``validation``/``test`` channels (CSV with the schema's curated columns).
    2. Engineer features with :func:`training.features.engineer`, fit the network with class weights
       and early stopping on validation PR-AUC.
    3. Choose the decision threshold that maximises F1 on validation.
    4. Export ``SM_MODEL_DIR/<version>/`` (serving signature on raw values, threshold in the graph) and
       the serving code under ``SM_MODEL_DIR/code/``.
    5. Reload the export, check it reproduces the trained network, and evaluate it on the test split:
       ``evaluation.json`` (model and output dirs), ``test_predictions.csv`` and ``METRIC`` log lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

import training
from mlkit.schema import SPLITS, DatasetSchema
from training.data import Split, read_split
from training.export import ExportError, export_saved_model, load_exported
from training.features import engineer
from training.hyperparameters import parse_args
from training.metrics import (
    best_f1_threshold,
    binary_metrics,
    confusion_counts,
    final_metric_values,
    format_metric_line,
)
from training.network import build_model, class_weights
from training.serving_code import write_serving_code

logger = logging.getLogger("training")

EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "test_predictions.csv"
FAILURE_FILE = "failure"
FAILURE_REASON_LIMIT = 1024
#: The exported signature must reproduce the in-memory network; float32 graph rewrites stay far below this.
EXPORT_TOLERANCE = 1e-5


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the training job.

    Args:
        argv: Command-line flags (``sys.argv[1:]`` when ``None``), see :mod:`training.hyperparameters`.

    Returns:
        The evaluation written to ``evaluation.json``.
    """
    started = time.monotonic()
    args = parse_args(argv)
    schema = DatasetSchema.load(args.schema)
    # Which copy of the code runs: the extracted sourcedir in a job, the checkout otherwise.
    logger.info("training package: %s", Path(training.__file__).resolve().parent)
    logger.info("dataset %s, label %r, hyperparameters %s", schema.name, schema.label, _describe(args))
    keras.utils.set_random_seed(args.seed)
    # Same seed, same data, same model: op determinism makes CPU reductions reproducible too.
    tf.config.experimental.enable_op_determinism()

    splits = {name: read_split(Path(getattr(args, name)), schema) for name in SPLITS}
    for name, split in splits.items():
        logger.info("%s: %d rows, %d positive, from %d file(s)", name, len(split), split.positives, len(split.files))
    if splits["train"].positives == 0:
        raise ValueError("the training split has no positive labels; there is nothing to learn")

    model = fit(splits["train"], splits["validation"], schema, args)
    validation_probability = _network_probability(model, splits["validation"], schema)
    threshold, validation_f1 = best_f1_threshold(splits["validation"].labels, validation_probability)
    logger.info("threshold %.6f (validation F1 %.4f)", threshold, validation_f1)

    model_dir = Path(args.model_dir)
    export_dir = export_saved_model(schema, model, threshold, model_dir / str(args.model_version))
    write_serving_code(model_dir, schema)
    exported = load_exported(export_dir)
    served_validation = exported.predict(splits["validation"].features)
    difference = float(np.max(np.abs(served_validation["probability"] - validation_probability), initial=0.0))
    if difference > EXPORT_TOLERANCE:
        raise ExportError(f"the exported model differs from the trained network by {difference:.3g} on validation")

    served_test = exported.predict(splits["test"].features)
    evaluation = {
        "dataset": schema.name,
        "label": schema.label,
        "threshold": threshold,
        "metrics": binary_metrics(splits["test"].labels, served_test["probability"], served_test["label"]),
        "confusion_matrix": confusion_counts(splits["test"].labels, served_test["label"]),
        "rows": {name: len(split) for name, split in splits.items()},
        "positives": {name: split.positives for name, split in splits.items()},
        "validation_metrics": binary_metrics(
            splits["validation"].labels, served_validation["probability"], served_validation["label"]
        ),
        "model_version": args.model_version,
        "hyperparameters": _describe(args),
        "training_seconds": round(time.monotonic() - started, 3),
    }
    output_dir = Path(args.output_data_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for directory in (model_dir, output_dir):
        (directory / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    write_predictions(output_dir / PREDICTIONS_FILE, splits["test"], served_test)
    for name, value in final_metric_values(evaluation["metrics"], threshold).items():
        print(format_metric_line(name, value), flush=True)
    logger.info("done in %.1f s", time.monotonic() - started)
    return evaluation


def fit(train: Split, validation: Split, schema: DatasetSchema, args: argparse.Namespace) -> keras.Model:
    """Engineer features for both splits and fit the network; returns the epoch with the best validation PR-AUC."""
    train_blocks = _blocks(train, schema)
    validation_blocks = _blocks(validation, schema)
    model = build_model(
        train_blocks,
        hidden_units=args.hidden_units,
        dropout=args.dropout,
        l2=args.l2,
        learning_rate=args.learning_rate,
        positive_rate=train.positives / len(train),
    )
    weights = class_weights(train.labels, args.class_weight)
    logger.info("class weights %s", weights)
    callbacks: list[keras.callbacks.Callback] = [_EpochProgress(args.epochs)]
    if args.patience > 0 and validation.positives:
        # PR-AUC, not loss: with ~3 % positives the loss is dominated by easy negatives.
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_pr_auc", mode="max", patience=args.patience, restore_best_weights=True
            )
        )
    model.fit(
        train_blocks,
        train.labels.astype(np.float32),
        validation_data=(validation_blocks, validation.labels.astype(np.float32)),
        epochs=args.epochs,
        batch_size=args.batch_size,
        class_weight=weights,
        callbacks=callbacks,
        shuffle=True,
        verbose=args.verbose,
    )
    return model


class _EpochProgress(keras.callbacks.Callback):  # type: ignore[misc]  # keras ships no type stubs
    """Log one line per epoch through the ``training`` logger (what ``mlkit run`` shows as progress)."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        shown = {k: v for k, v in (logs or {}).items() if k in ("loss", "val_loss", "val_pr_auc")}
        logger.info("epoch %d/%d: %s", epoch + 1, self.epochs, ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))


def write_predictions(path: Path, split: Split, outputs: Mapping[str, NDArray[Any]]) -> None:
    """Write ``id,label,probability,predicted`` per row; probabilities keep full float32 precision."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "probability", "predicted"])
        for row_id, label, probability, predicted in zip(
            split.ids, split.labels, outputs["probability"], outputs["label"], strict=True
        ):
            # 9 significant digits round-trip any float32 exactly.
            writer.writerow([row_id, int(label), f"{float(probability):.9g}", int(predicted)])


def _blocks(split: Split, schema: DatasetSchema) -> dict[str, NDArray[np.float32]]:
    tensors = {key: tf.constant(values) for key, values in split.features.items()}
    return {name: block.numpy() for name, block in engineer(tensors, schema).items()}


def _network_probability(model: keras.Model, split: Split, schema: DatasetSchema) -> NDArray[np.float32]:
    probability = model.predict(_blocks(split, schema), batch_size=4096, verbose=0)
    return np.asarray(probability, dtype=np.float32).reshape(-1)


def _describe(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"train", "validation", "test", "model_dir", "output_data_dir"}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(vars(args).items()) if k not in skip}


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout, force=True
    )


def cli(argv: Sequence[str] | None = None) -> None:
    """Run :func:`main` as the container does, recording why it failed if it does.

    SageMaker reports the first 1024 characters of ``/opt/ml/output/failure`` as the job's
    FailureReason, and the toolkit only writes that file when the program has not. A one-line
    reason (``ChannelError: .../train/part-0.csv:12: 'Torque [Nm]' must be a number``) says more than
    the toolkit's scrape of stderr; the traceback still goes to the log.
    """
    _configure_logging()
    try:
        main(argv)
    except Exception as error:
        output_dir = os.environ.get("SM_OUTPUT_DIR")
        if output_dir and not (Path(output_dir) / FAILURE_FILE).exists():
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            reason = f"{type(error).__name__}: {error}"
            (Path(output_dir) / FAILURE_FILE).write_text(reason[:FAILURE_REASON_LIMIT], encoding="utf-8")
        raise


if __name__ == "__main__":
    cli()
