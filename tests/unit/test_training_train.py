"""train.py end to end on small synthetic splits: export layout, serving signature, evaluation outputs."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as skm
from training_helpers import write_channels

import inference.inference
import mlkit.schema
from mlkit.schema import DatasetSchema
from training import export, serving_code, train
from training.data import ChannelError, read_split
from training.features import engineer
from training.metrics import FINAL_METRIC_NAMES

pytestmark = pytest.mark.unit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Few epochs on ~1,400 rows: enough to exercise everything, not to learn well.
QUICK = ["--epochs", "4", "--batch-size", "64", "--hidden-units", "16,8", "--verbose", "0"]


def _argv(channels: dict[str, Path], model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        *("--train", str(channels["train"]), "--validation", str(channels["validation"])),
        *("--test", str(channels["test"]), "--model-dir", str(model_dir), "--output-data-dir", str(output_dir)),
        *QUICK,
        *extra,
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, schema: DatasetSchema) -> dict[str, Any]:
    """One in-process training run on synthetic splits."""
    root = tmp_path_factory.mktemp("train")
    channels = write_channels(root / "data", schema)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        evaluation = train.main(_argv(channels, root / "model", root / "output"))
    return {
        "channels": channels,
        "model_dir": root / "model",
        "output_dir": root / "output",
        "evaluation": evaluation,
        "stdout": stdout.getvalue(),
    }


def _predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_model_dir_is_complete_for_tf_serving(run: dict[str, Any], schema: DatasetSchema) -> None:
    model_dir: Path = run["model_dir"]
    assert (model_dir / "1" / "saved_model.pb").is_file()
    assert (model_dir / "1" / "variables" / "variables.index").is_file()
    code = model_dir / "code"
    assert (code / "inference.py").read_bytes() == Path(inference.inference.__file__).read_bytes()
    assert json.loads((code / "schema.json").read_text()) == schema.to_dict()
    assert (code / "lib" / "mlkit" / "schema.py").read_bytes() == Path(mlkit.schema.__file__).read_bytes()
    assert (code / "lib" / "mlkit" / "__init__.py").is_file()
    on_model = json.loads((model_dir / "evaluation.json").read_text())
    assert on_model == json.loads((run["output_dir"] / "evaluation.json").read_text())


def test_serving_signature_takes_raw_values_and_thresholds_in_graph(run: dict[str, Any], schema: DatasetSchema) -> None:
    exported = export.load_exported(run["model_dir"] / "1")
    signature = exported.signature
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {c.key for c in schema.features}
    for column in schema.features:
        assert inputs[column.key].dtype == (tf.string if column.kind == "categorical" else tf.float32)
        assert inputs[column.key].shape.as_list() == [None]
    outputs = signature.structured_outputs
    assert set(outputs) == {"probability", "label"}
    assert (outputs["probability"].dtype, outputs["label"].dtype) == (tf.float32, tf.int64)

    test = read_split(run["channels"]["test"], schema)
    served = exported.predict(test.features)
    threshold = np.float32(run["evaluation"]["threshold"])
    np.testing.assert_array_equal(served["label"], (served["probability"] >= threshold).astype(np.int64))
    # Raw strings and numbers go in: a category with stray blanks is the same category. (One row alone
    # may differ from the same row in a batch in the last float32 bit: batched matmuls round differently.)
    one = {c.key: test.features[c.key][:1] for c in schema.features}
    padded = dict(one)
    for column in schema.categorical_features:
        padded[column.key] = np.array([f"  {one[column.key][0]} "], dtype=object)
    assert exported.predict(padded)["probability"][0] == exported.predict(one)["probability"][0]
    assert exported.predict(one)["probability"][0] == pytest.approx(served["probability"][0], abs=1e-6)


def test_evaluation_describes_the_exported_model_on_test(run: dict[str, Any], schema: DatasetSchema) -> None:
    evaluation = run["evaluation"]
    assert evaluation["label"] == schema.label
    assert 0.0 < evaluation["threshold"] < 1.0
    rows = _predictions(run["output_dir"] / "test_predictions.csv")
    assert list(rows[0]) == ["id", "label", "probability", "predicted"]
    assert evaluation["rows"] == {"train": 800, "validation": 300, "test": 300}
    assert len(rows) == evaluation["rows"]["test"]
    labels = np.array([int(r["label"]) for r in rows])
    probability = np.array([float(r["probability"]) for r in rows], dtype=np.float32)
    predicted = np.array([int(r["predicted"]) for r in rows])
    assert evaluation["positives"]["test"] == int(labels.sum())
    matrix = evaluation["confusion_matrix"]
    assert sum(matrix.values()) == len(rows)
    assert (matrix["tp"], matrix["fp"]) == (
        int(((labels == 1) & (predicted == 1)).sum()),
        int((predicted > labels).sum()),
    )
    metrics = evaluation["metrics"]
    assert set(metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"}
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert metrics["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, probability))
    assert metrics["pr_auc"] == pytest.approx(skm.average_precision_score(labels, probability))
    assert set(evaluation["validation_metrics"]) == set(metrics)
    # The offline predictions are what the exported signature returns, to the last float32 bit.
    test = read_split(run["channels"]["test"], schema)
    served = export.load_exported(run["model_dir"] / "1").predict(test.features)
    assert [r["id"] for r in rows] == test.ids
    np.testing.assert_array_equal(probability, served["probability"])


def test_final_metrics_are_printed_for_sagemaker(run: dict[str, Any]) -> None:
    lines = [line for line in run["stdout"].splitlines() if line.startswith("METRIC ")]
    assert [line.split()[1].split("=")[0] for line in lines] == list(FINAL_METRIC_NAMES)
    printed = dict(line.split()[1].split("=") for line in lines)
    assert float(printed["test_f1"]) == pytest.approx(run["evaluation"]["metrics"]["f1"], abs=1e-6)
    assert float(printed["threshold"]) == pytest.approx(run["evaluation"]["threshold"], abs=1e-6)


def test_export_reproduces_the_network_on_engineered_features(
    tmp_path: Path, schema: DatasetSchema, run: dict[str, Any]
) -> None:
    train_split = read_split(run["channels"]["train"], schema)
    validation = read_split(run["channels"]["validation"], schema)
    args = argparse.Namespace(
        hidden_units=(8,), dropout=0.0, l2=0.0, learning_rate=0.01, class_weight="balanced",
        patience=0, epochs=2, batch_size=128, verbose=0,
    )  # fmt: skip
    model = train.fit(train_split, validation, schema, args)
    exported_dir = export.export_saved_model(schema, model, 0.5, tmp_path / "7")
    served = export.load_exported(exported_dir).predict(validation.features)
    blocks = engineer({k: tf.constant(v) for k, v in validation.features.items()}, schema)
    expected = model.predict({k: v.numpy() for k, v in blocks.items()}, verbose=0).reshape(-1)
    np.testing.assert_allclose(served["probability"], expected, atol=1e-6)
    np.testing.assert_array_equal(served["label"], (served["probability"] >= np.float32(0.5)).astype(np.int64))


def test_missing_inference_code_fails_clearly(
    tmp_path: Path, schema: DatasetSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving_code.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(serving_code.ServingCodeError, match=r"inference/inference\.py"):
        serving_code.write_serving_code(tmp_path, schema)


def test_runs_as_a_script_from_the_checkout_and_reproduces_the_run(tmp_path: Path, run: dict[str, Any]) -> None:
    # `python training/train.py` from anywhere: the imports are absolute and resolve without the cwd.
    # The same flags and seed in a fresh process must give the very same predictions.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = _argv(run["channels"], tmp_path / "model", tmp_path / "output", "--mystery-flag", "x")
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "training" / "train.py"), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "METRIC test_f1=" in result.stdout
    assert "ignoring unknown arguments: --mystery-flag x" in result.stdout
    assert (tmp_path / "model" / "1" / "saved_model.pb").is_file()
    first = _predictions(run["output_dir"] / "test_predictions.csv")
    assert _predictions(tmp_path / "output" / "test_predictions.csv") == first


def test_a_failure_reason_is_left_for_sagemaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setattr(train, "_configure_logging", lambda: None)  # keep pytest's logging setup
    channels = {name: tmp_path / "absent" / name for name in ("train", "validation", "test")}
    with pytest.raises(ChannelError):
        train.cli(_argv(channels, tmp_path / "model", tmp_path / "data"))
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("ChannelError: channel directory")
    assert str(tmp_path / "absent" / "train") in reason
