"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlkit.schema import DatasetSchema

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# CI lays ../shared beside the clone; MLKIT_AI4I_CSV points elsewhere when it is not there.
AI4I_CSV = Path(os.environ.get("MLKIT_AI4I_CSV", PROJECT_ROOT.parent / "shared" / "data" / "ai4i2020.csv"))


@pytest.fixture(scope="session")
def schema() -> DatasetSchema:
    """The default (AI4I 2020) dataset schema."""
    return DatasetSchema.load()


@pytest.fixture(scope="session")
def ai4i_csv() -> Path:
    """The real AI4I 2020 CSV. A missing file is an error, never a silent skip."""
    if not AI4I_CSV.is_file():
        pytest.fail(f"AI4I 2020 data not found at {AI4I_CSV}; set MLKIT_AI4I_CSV or run `mlkit fetch-data`")
    return AI4I_CSV
