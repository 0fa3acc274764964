"""Binary-classification metrics in numpy, threshold selection, and the ``METRIC`` log-line contract.

The training container has numpy but not scikit-learn, so the metrics are implemented here; the unit
tests compare them with scikit-learn. ROC-AUC is exact (rank statistic with tied scores averaged) and
PR-AUC is average precision, both as scikit-learn defines them.

The final metrics are also printed as ``METRIC <name>=<value>`` lines. SageMaker turns log lines into
CloudWatch metrics through the training job's ``MetricDefinitions`` (a name and a regex per metric);
:func:`metric_definitions` builds exactly those, so the CDK stack and the local training-contract
runner read the same lines the script writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Prefix of every metric log line.
METRIC_PREFIX = "METRIC"
#: Names of the final metrics that ``train.py`` prints, in print order.
FINAL_METRIC_NAMES = (
    "test_accuracy",
    "test_precision",
    "test_recall",
    "test_f1",
    "test_roc_auc",
    "test_pr_auc",
    "threshold",
)
#: A printed value: a plain or scientific decimal (``nan`` is never printed; undefined metrics are skipped).
_NUMBER = r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"


def format_metric_line(name: str, value: float) -> str:
    """Return the log line for one metric, e.g. ``METRIC test_f1=0.861234``."""
    return f"{METRIC_PREFIX} {name}={value:.6f}"


def metric_regex(name: str) -> str:
    """Return the regex whose first group captures ``name``'s value in a metric log line.

    This is the ``Regex`` of a SageMaker ``MetricDefinition``. The trailing boundary keeps
    ``test_f1`` from matching a hypothetical ``test_f1_macro`` line.
    """
    return rf"{METRIC_PREFIX} {re.escape(name)}=({_NUMBER})(?![0-9A-Za-z_])"


def metric_definitions(names: tuple[str, ...] = FINAL_METRIC_NAMES) -> list[dict[str, str]]:
    """Return SageMaker ``MetricDefinitions`` (``[{"Name": ..., "Regex": ...}]``) for ``names``."""
    return [{"Name": name, "Regex": metric_regex(name)} for name in names]


def parse_metric_lines(text: str, names: tuple[str, ...] = FINAL_METRIC_NAMES) -> dict[str, float]:
    """Extract metric values from log text the way SageMaker does; the last occurrence of a name wins.

    Args:
        text: Log output of a training job.
        names: The metric names to look for.

    Returns:
        The metrics found, keyed by name (absent names are left out).
    """
    found: dict[str, float] = {}
    for name in names:
        matches = re.findall(metric_regex(name), text)
        if matches:
            found[name] = float(matches[-1])
    return found


def _as_arrays(y_true: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    labels = np.asarray(y_true).astype(np.int64).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != values.shape:
        raise ValueError(f"labels and scores differ in length: {labels.shape[0]} != {values.shape[0]}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return labels, values


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, int]:
    """Return the confusion matrix of binary labels as ``{"tn", "fp", "fn", "tp"}`` counts."""
    truth, predicted = _as_arrays(y_true, y_pred)
    positive, predicted_positive = truth == 1, predicted == 1
    return {
        "tn": int(np.sum(~positive & ~predicted_positive)),
        "fp": int(np.sum(~positive & predicted_positive)),
        "fn": int(np.sum(positive & ~predicted_positive)),
        "tp": int(np.sum(positive & predicted_positive)),
    }


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """Exact ROC-AUC: the Mann-Whitney statistic, with tied scores given their average rank.

    Returns:
        The area, or ``None`` when only one class is present (the area is undefined).
    """
    labels, values = _as_arrays(y_true, scores)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # The 1-based ranks a tie group spans are (end - count + 1) .. end; every member gets their mean.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    rank_sum = float(ranks[labels == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def _cumulative_counts(
    labels: NDArray[np.int64], values: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """True and false positives when predicting positive for scores >= each distinct score (descending)."""
    order = np.argsort(-values, kind="mergesort")
    sorted_values, sorted_labels = values[order], labels[order]
    # The last index of each run of equal scores: a cut can only fall between distinct scores.
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_values)), sorted_values.size - 1]
    true_positives = np.cumsum(sorted_labels)[last_of_group]
    false_positives = (last_of_group + 1) - true_positives
    return sorted_values[last_of_group], true_positives, false_positives


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """PR-AUC as average precision: sum over distinct thresholds of (recall step) x precision.

    Returns:
        The average precision, or ``None`` when there are no positive labels.
    """
    labels, values = _as_arrays(y_true, scores)
    positives = int(labels.sum())
    if positives == 0:
        return None
    _, true_positives, false_positives = _cumulative_counts(labels, values)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / positives
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


def best_f1_threshold(y_true: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Choose the decision threshold that maximises F1 (predict positive when ``score >= threshold``).

    The threshold is placed halfway between the lowest score predicted positive and the next lower
    score, computed in float32 (the dtype of the model's probabilities), so that the exported model
    reproduces exactly the cut chosen here. Ties in F1 go to the higher threshold (fewer alarms).

    Args:
        y_true: Binary labels of the selection split (validation).
        scores: Predicted probabilities for the same rows.

    Returns:
        ``(threshold, f1 at that threshold)``; ``(0.5, 0.0)`` when there are no positives to find.
    """
    labels, values = _as_arrays(y_true, scores)
    positives = int(labels.sum())
    if positives == 0:
        return 0.5, 0.0
    cut_values, true_positives, false_positives = _cumulative_counts(labels, values)
    f1 = 2.0 * true_positives / (true_positives + false_positives + positives)
    best = int(np.argmax(f1))  # argmax returns the first maximum: the highest threshold among ties
    chosen = np.float32(cut_values[best])
    if best + 1 < cut_values.size:
        below = np.float32(cut_values[best + 1])
        midpoint = np.float32((chosen + below) / np.float32(2.0))
        # Adjacent float32 values have no midpoint between them; then cut exactly at the chosen score.
        threshold = midpoint if below < midpoint <= chosen else chosen
    else:
        threshold = chosen
    return float(threshold), float(f1[best])


def binary_metrics(y_true: ArrayLike, probabilities: ArrayLike, predicted: ArrayLike) -> dict[str, float | None]:
    """Return accuracy, precision, recall, F1 (of ``predicted``) and ROC-AUC, PR-AUC (of ``probabilities``).

    Precision and F1 are 0.0 when nothing is predicted positive, like scikit-learn's
    ``zero_division=0``. The AUCs are ``None`` where undefined (a single class).
    """
    counts = confusion_counts(y_true, predicted)
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    total = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y_true, probabilities),
        "pr_auc": average_precision(y_true, probabilities),
    }


def final_metric_values(metrics: Mapping[str, float | None], threshold: float) -> dict[str, float]:
    """Map test-split metrics to the :data:`FINAL_METRIC_NAMES` printed as log lines (defined ones only)."""
    values: dict[str, float] = {}
    for name in FINAL_METRIC_NAMES:
        value = threshold if name == "threshold" else metrics.get(name.removeprefix("test_"))
        if value is not None and math.isfinite(value):
            values[name] = float(value)
    return values
