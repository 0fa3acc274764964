"""The model-quality bars on the real AI4I 2020 data, trained through the SageMaker training contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import hash_split

from mlkit.packaging import build_sourcedir
from mlkit.schema import DatasetSchema
from mlkit.training_contract import run_training_job

pytestmark = pytest.mark.slow


def test_default_hyperparameters_meet_the_quality_bars(tmp_path: Path, schema: DatasetSchema, ai4i_csv: Path) -> None:
    channels = hash_split(ai4i_csv, tmp_path / "curated", schema)
    result = run_training_job(
        job_name="ai4i-quality",
        source_tar=build_sourcedir(tmp_path / "artifacts"),
        channels=channels,
        hyperparameters={},  # train.py's defaults are the tuned configuration
        base_dir=tmp_path / "opt_ml",
        echo=False,
    )
    evaluation = result.evaluation
    assert sum(evaluation["rows"].values()) == 10_000
    assert sum(evaluation["positives"].values()) == 339
    metrics = evaluation["metrics"]
    summary = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    # Issue 2's acceptance bars for `Machine failure` on the test split. The majority class alone
    # scores 0.966 accuracy, so F1 and ROC-AUC carry the weight here.
    assert metrics["f1"] >= 0.80, summary
    assert metrics["roc_auc"] >= 0.96, summary
    assert metrics["accuracy"] >= 0.985, summary
    assert result.final_metrics["test_f1"] == pytest.approx(metrics["f1"], abs=1e-6)
