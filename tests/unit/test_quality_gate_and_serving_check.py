"""Quality gate and the served-versus-offline comparison used by ``mlkit run``."""

from __future__ import annotations

import numpy as np
import pytest

from mlkit.quality_gate import QualityGate
from mlkit.serving_check import Served, compare, percentile

pytestmark = pytest.mark.unit


def test_gate_passes_good_metrics_and_names_each_failure() -> None:
    gate = QualityGate(min_f1=0.8, min_roc_auc=0.96, min_accuracy=0.985)
    assert gate.check({"f1": 0.85, "roc_auc": 0.97, "accuracy": 0.99}) == []
    failures = gate.check({"f1": 0.5, "roc_auc": 0.97})
    assert failures == ["f1 0.5000 < 0.8", "accuracy missing from the evaluation"]


def test_gate_rejects_impossible_minimums() -> None:
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        QualityGate(min_f1=1.5)


def test_compare_flags_label_and_probability_mismatches() -> None:
    offline = {"1": (0.10, 0), "2": (0.90, 1), "3": (0.40, 0)}
    served = [
        Served("1", 0.100001, 0, 1.0),
        Served("2", 0.90, 0, 1.0),
        Served("3", 0.45, 0, 1.0),
        Served("4", 0.1, 0, 1.0),
    ]
    result = compare(served, offline)
    assert (result.label_mismatches, result.probability_mismatches, result.missing_offline) == (["2"], ["3"], ["4"])
    assert not result.equal
    assert compare([Served("1", 0.1, 0, 1.0), Served("2", 0.9, 1, 1.0), Served("3", 0.4, 0, 1.0)], offline).equal
    partial = compare(served[:1], offline)
    assert not partial.equal and partial.not_served == ["2", "3"]  # a row never served proves nothing
    assert not compare([], offline).equal


def test_percentile_matches_numpy() -> None:
    values = [float(v) for v in np.random.default_rng(0).exponential(size=501)]
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
