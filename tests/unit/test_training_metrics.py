"""The numpy metrics of training/metrics.py agree with scikit-learn; threshold choice; METRIC lines."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn import metrics as skm

from training.metrics import (
    FINAL_METRIC_NAMES,
    average_precision,
    best_f1_threshold,
    binary_metrics,
    confusion_counts,
    final_metric_values,
    format_metric_line,
    metric_definitions,
    metric_regex,
    parse_metric_lines,
    roc_auc,
)

pytestmark = pytest.mark.unit


def _case(seed: int, rows: int = 400, rate: float = 0.07, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < rate).astype(np.int64)
    labels[:2] = (0, 1)  # both classes, always
    scores = np.clip(0.35 * labels + rng.normal(0.3, 0.2, rows), 0, 1)
    if ties:
        scores = np.round(scores, 1)  # many tied scores, across classes
    return labels, scores.astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_auc_metrics_equal_scikit_learn(seed: int, ties: bool) -> None:
    labels, scores = _case(seed, ties=ties)
    assert roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_threshold_metrics_equal_scikit_learn(seed: int) -> None:
    labels, scores = _case(seed)
    predicted = (scores >= 0.5).astype(np.int64)
    ours = binary_metrics(labels, scores, predicted)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert ours["precision"] == pytest.approx(skm.precision_score(labels, predicted, zero_division=0))
    assert ours["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert ours["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    tn, fp, fn, tp = skm.confusion_matrix(labels, predicted).ravel()
    assert confusion_counts(labels, predicted) == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def test_degenerate_inputs() -> None:
    only_negatives = np.zeros(5, np.int64)
    scores = np.linspace(0, 1, 5)
    assert roc_auc(only_negatives, scores) is None
    assert average_precision(only_negatives, scores) is None
    nothing_predicted = binary_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]), np.zeros(3, np.int64))
    assert nothing_predicted["precision"] == 0.0
    assert nothing_predicted["f1"] == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        roc_auc(np.array([0, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="0 or 1"):
        confusion_counts(np.array([0, 2]), np.array([0, 1]))


@pytest.mark.parametrize("seed", range(5))
def test_best_f1_threshold_is_the_best_cut(seed: int) -> None:
    labels, scores = _case(seed, rows=300, rate=0.1)
    threshold, f1 = best_f1_threshold(labels, scores)
    # Applying the threshold as the exported graph does (float32 >=) reproduces the reported F1 ...
    assert skm.f1_score(labels, (scores >= np.float32(threshold)).astype(int)) == pytest.approx(f1)
    # ... and no cut at any observed score does better.
    best_possible = max(skm.f1_score(labels, (scores >= s).astype(int)) for s in np.unique(scores))
    assert f1 == pytest.approx(best_possible)


def test_threshold_falls_between_the_separating_scores() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.4, 0.8, 0.9], np.float32)
    threshold, f1 = best_f1_threshold(labels, scores)
    assert f1 == 1.0
    assert threshold == pytest.approx(0.6)  # halfway: both neighbours keep a margin


def test_threshold_ties_prefer_the_higher_cut_and_no_positives_fall_back() -> None:
    # Cutting above 0.9 or above 0.3 gives the same F1 (2/3); the higher cut raises fewer alarms.
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.2, 0.1, 0.1], np.float32)
    threshold, f1 = best_f1_threshold(labels, scores)
    assert f1 == pytest.approx(2 / 3)
    assert 0.8 < threshold < 0.9
    assert best_f1_threshold(np.zeros(3, np.int64), np.array([0.1, 0.2, 0.3])) == (0.5, 0.0)


def test_metric_lines_round_trip_through_the_sagemaker_regexes() -> None:
    values = {"test_f1": 0.861234, "test_roc_auc": 0.97, "threshold": 1e-7}
    log = "\n".join(
        [
            "Epoch 3/10 - test_f1_macro=0.2",
            *(format_metric_line(n, v) for n, v in values.items()),
            format_metric_line("test_f1", 0.9),
        ]
    )
    assert format_metric_line("test_f1", 0.861234) == "METRIC test_f1=0.861234"
    # The last value wins, as for SageMaker's final metric; other names do not leak in.
    assert parse_metric_lines(log) == {"test_f1": 0.9, "test_roc_auc": 0.97, "threshold": 0.0}
    definitions = metric_definitions()
    assert [d["Name"] for d in definitions] == list(FINAL_METRIC_NAMES)
    for definition in definitions:
        re.compile(definition["Regex"])  # valid regexes, one capture group each
        assert re.compile(definition["Regex"]).groups == 1
    assert re.search(metric_regex("test_f1"), "METRIC test_f1_macro=0.5") is None
    assert re.search(metric_regex("test_f1"), "METRIC test_f1=1.5e-03").group(1) == "1.5e-03"


def test_final_metric_values_skip_undefined_metrics() -> None:
    metrics = {"accuracy": 0.99, "precision": 0.9, "recall": 0.8, "f1": 0.85, "roc_auc": None, "pr_auc": 0.9}
    values = final_metric_values(metrics, threshold=0.4)
    assert values == {
        "test_accuracy": 0.99,
        "test_precision": 0.9,
        "test_recall": 0.8,
        "test_f1": 0.85,
        "test_pr_auc": 0.9,
        "threshold": 0.4,
    }
