"""``mlkit``'s own argument handling: clear messages before any step runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlkit.cli import main

pytestmark = pytest.mark.unit


def test_missing_data_never_points_at_an_earlier_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"status": "succeeded"}), encoding="utf-8")

    assert main(["run", "--data", str(tmp_path / "missing.csv"), "--workdir", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    assert f"mlkit run failed: input data not found: {tmp_path / 'missing.csv'}" in err
    assert "partial report" not in err


@pytest.mark.parametrize(
    ("value", "message"),
    [("not json", "not valid JSON (Expecting value"), ("[1, 2]", "expected a JSON object such as")],
)
def test_hyperparameters_must_be_a_json_object(value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--data", "x.csv", "--hyperparameters", value])

    assert exited.value.code == 2
    assert f"argument --hyperparameters: {message}" in capsys.readouterr().err
