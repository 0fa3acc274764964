"""``mlkit run`` end to end on the real AI4I data, as a user runs it (the console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _mlkit_run(data: Path, workdir: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    completed = subprocess.run(
        [str(BIN / "mlkit"), "run", "--data", str(data), "--workdir", str(workdir), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    report_path = workdir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return completed, report


@pytest.fixture(scope="module")
def clean_run(ai4i_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    completed, report = _mlkit_run(ai4i_csv, tmp_path_factory.mktemp("run"))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout, report


def test_report_meets_the_quality_bar(clean_run: tuple[str, dict[str, Any]]) -> None:
    _, report = clean_run
    assert report["status"] == "succeeded"
    metrics = report["metrics"]
    assert metrics["f1"] >= 0.80
    assert metrics["roc_auc"] >= 0.96
    assert metrics["accuracy"] >= 0.985
    assert report["quality_gate"]["passed"] is True


def test_counts_add_up_on_the_real_data(clean_run: tuple[str, dict[str, Any]]) -> None:
    rows = clean_run[1]["rows"]
    assert (rows["read"], rows["accepted"], rows["rejected"], rows["duplicates"]) == (10_000, 10_000, 0, 0)
    assert sum(s["rows"] for s in rows["splits"].values()) == 10_000
    assert sum(s["positives"] for s in rows["splits"].values()) == 339
    assert all(s["positives"] > 0 for s in rows["splits"].values())


def test_every_test_row_is_served_equal_to_offline(clean_run: tuple[str, dict[str, Any]]) -> None:
    report = clean_run[1]
    served = report["endpoint"]
    assert served["requests"] == report["rows"]["splits"]["test"]["rows"]
    assert served["served_equals_offline"]["equal"] is True
    assert served["served_equals_offline"]["rows"] == served["requests"]
    assert served["latency_ms"]["p50"] <= served["latency_ms"]["p99"]


def test_summary_is_printed_and_report_written(clean_run: tuple[str, dict[str, Any]]) -> None:
    stdout, report = clean_run
    assert "[6/6] compare served with offline predictions done" in stdout
    assert "served == offline for every row: True" in stdout
    assert f"F1 {report['metrics']['f1']:.4f}" in stdout


def test_run_on_bad_rows_completes_and_accounts_for_every_line(ai4i_csv: Path, tmp_path: Path) -> None:
    lines = ai4i_csv.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    bad = [
        "10001,L99999,L,298.1,308.6",  # truncated
        "10002,L99998,L,298.1,308.6,fast,42.8,0,0,0,0,0,0,0",  # text in a numeric column
        "10003,L99997,L,298.1,308.6,1551,-42.8,0,0,0,0,0,0,0",  # negative torque
        "10004,L99996,,298.1,308.6,1551,42.8,0,0,0,0,0,0,0",  # missing Type
        body[0],  # duplicate UDI 1
        "10005,L99995,L,298.1,308.6,1551,42.8,0,0,0,0,0,0,0,9",  # extra column
        "",  # blank line
    ]
    data = tmp_path / "dirty.csv"
    data.write_bytes(("\ufeff" + "\r\n".join([header, *body, *bad]) + "\r\n").encode("utf-8"))
    completed, report = _mlkit_run(data, tmp_path / "run")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = report["rows"]
    assert rows["read"] == 10_007
    assert (rows["accepted"], rows["rejected"], rows["duplicates"]) == (10_000, 6, 1)
    rejected = [
        json.loads(line)
        for path in sorted((tmp_path / "run" / "curated" / "rejected").glob("*"))
        for line in path.read_text().splitlines()
    ]
    assert sorted(r["line"] for r in rejected) == list(range(10_002, 10_009))


def test_a_failed_training_job_ends_the_run_with_its_reason(ai4i_csv: Path, tmp_path: Path) -> None:
    completed, report = _mlkit_run(ai4i_csv, tmp_path / "run", "--hyperparameters", '{"epochs": "many"}')

    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert "mlkit run failed: train (SageMaker training contract):" in completed.stderr
    assert "epochs" in completed.stderr
    assert report["status"] == "failed"
    assert report["error"].startswith("train (SageMaker training contract):")
    assert report["rows"]["accepted"] == 10_000  # the preprocessing step before it completed
