"""The model quality gate: minimum test-split metrics a model needs before it may serve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QualityGate:
    """Minimums on the evaluation's test metrics (names as in ``evaluation.json``'s ``metrics``).

    The defaults are the kit's bar for the AI4I reference workload; accuracy alone proves little
    there (the majority class scores 0.966), hence F1 and ROC-AUC.
    """

    min_f1: float = 0.80
    min_roc_auc: float = 0.96
    min_accuracy: float = 0.985

    def __post_init__(self) -> None:
        for name, value in self.minimums().items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"quality gate minimum for {name} must be within [0, 1], got {value}")

    def minimums(self) -> dict[str, float]:
        """Return metric name -> minimum."""
        return {"f1": self.min_f1, "roc_auc": self.min_roc_auc, "accuracy": self.min_accuracy}

    def check(self, metrics: Mapping[str, Any]) -> list[str]:
        """Return one message per failed check (empty when the model passes).

        A metric missing from ``metrics`` fails its check rather than passing silently.
        """
        failures = []
        for name, minimum in self.minimums().items():
            value = metrics.get(name)
            if value is None:
                failures.append(f"{name} missing from the evaluation")
            elif float(value) < minimum:
                failures.append(f"{name} {float(value):.4f} < {minimum}")
        return failures
