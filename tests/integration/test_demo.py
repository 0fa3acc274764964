"""`make demo` (``mlkit local demo``) end to end on the session's LocalStack, exactly as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.stacks.monitoring_stack import endpoint_alarm_names
from infra.stages import get_stage
from mlkit.local import control
from mlkit.local.demo import run_demo
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.integration


def test_demo_deploys_trains_serves_and_fires_the_alarms(
    localstack: control.Status, ai4i_csv: Path, schema: DatasetSchema, tmp_path: Path
) -> None:
    stage = get_stage("local")
    lines: list[str] = []

    run_demo(ai4i_csv, tmp_path, schema, say=lines.append)

    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["resources_checked"] > 0 and report["unknown_resources"] == 0
    assert report["pipeline"]["status"] == "SUCCEEDED"
    for metric, minimum in stage.gate_metrics.items():
        assert report["metrics"][metric] >= minimum, metric
    assert report["serving"]["served_equals_offline"] is True
    assert report["serving"]["requests"] > 1000
    assert report["malformed"]["all_4xx"] is True
    provoked = {endpoint_alarm_names(stage)[k] for k in ("client_errors", "latency")}
    assert set(report["alarms"]) == provoked
    assert all(when.startswith("ALARM after") for when in report["alarms"].values())
    assert set(report["notified"]) == provoked
    assert any(line.startswith("\nmlkit local demo: succeeded") for line in lines)
