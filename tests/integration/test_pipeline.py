"""The deployed pipeline end to end on LocalStack: real data, the quality gate, endpoint updates, alarms, SNS.

Everything goes through the stacks `mlkit local deploy` created (stage ``local``): the raw bucket, the
state machine, the stable endpoint name, the alarms and the alerts topic.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from localstack_helpers import wait_for

from infra.config import StageConfig
from infra.stacks.monitoring_stack import endpoint_alarm_names
from infra.stages import get_stage
from mlkit.local import stage_client
from mlkit.local.deploy import DeployReport
from mlkit.local.stage_client import Inbox
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stage() -> StageConfig:
    """The local stage's configuration: every physical name comes from it."""
    return get_stage("local")


@pytest.fixture(scope="session")
def stack_resources(deployed: DeployReport, stage: StageConfig) -> list[dict[str, Any]]:
    """Every resource of the deployed stacks."""
    return stage_client.stack_resources(stage)


@pytest.fixture(scope="session")
def raw_bucket(stack_resources: list[dict[str, Any]]) -> str:
    """The raw data bucket."""
    return stage_client.physical_id(stack_resources, "AWS::S3::Bucket", "Raw")


@pytest.fixture(scope="session")
def alerts(stack_resources: list[dict[str, Any]], stage: StageConfig) -> Inbox:
    """An SQS queue subscribed to the alerts topic (where alarms and pipeline failures go)."""
    return Inbox.subscribe(stage, f"alerts-{int(time.time())}")


def _run_pipeline(stage: StageConfig, payload: dict[str, Any]) -> dict[str, Any]:
    return stage_client.run_pipeline(stage, payload, timeout=1200)


@pytest.fixture(scope="session")
def first_run(
    aws: Callable[[str], Any], stage: StageConfig, raw_bucket: str, ai4i_csv: Path, alerts: Inbox
) -> dict[str, Any]:
    """One pipeline execution on the real AI4I CSV at the configured raw key."""
    aws("s3").upload_file(str(ai4i_csv), raw_bucket, stage.raw_input_key)
    return _run_pipeline(stage, {})


def test_pipeline_trains_and_deploys_under_the_stable_name(
    first_run: dict[str, Any], aws: Callable[[str], Any], stage: StageConfig
) -> None:
    assert first_run["status"] == "SUCCEEDED", first_run.get("cause") or first_run.get("error")
    endpoint = aws("sagemaker").describe_endpoint(EndpointName=stage.endpoint_name)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["DataCaptureConfig"]["EnableCapture"] is True


def test_served_predictions_equal_the_offline_evaluation(
    first_run: dict[str, Any], aws: Callable[[str], Any], stage: StageConfig, schema: DatasetSchema
) -> None:
    assert first_run["status"] == "SUCCEEDED"
    rows, offline = stage_client.test_split_and_offline_predictions(stage_client.serving_training_job(stage))
    runtime = aws("sagemaker-runtime")

    mismatches = []
    for row in rows:
        body = json.dumps({c.name: row[c.name] for c in schema.features})
        answer = runtime.invoke_endpoint(EndpointName=stage.endpoint_name, Body=body, ContentType="application/json")
        served = json.loads(answer["Body"].read())["predictions"][0]
        probability, label = offline[row[schema.id_column]]
        if served["label"] != label or abs(served["probability"] - probability) > 1e-5:
            mismatches.append(row[schema.id_column])

    assert len(rows) == len(offline)
    assert mismatches == []


def test_malformed_burst_fires_the_4xx_alarm_and_notifies(
    first_run: dict[str, Any], aws: Callable[[str], Any], stage: StageConfig, alerts: Inbox
) -> None:
    assert first_run["status"] == "SUCCEEDED"
    runtime, cloudwatch = aws("sagemaker-runtime"), aws("cloudwatch")
    alarm = endpoint_alarm_names(stage)["client_errors"]
    # Another test (or an earlier demo) may have left it in ALARM: only a transition notifies.
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test reset")
    # The alarm period may also hold the ~1500 valid requests of the test before: 250 bad ones are a
    # 4XX share of at least 14 %, well over the 5 % threshold whatever the period's alignment.
    for _ in range(250):
        with pytest.raises(runtime.exceptions.ModelError):
            runtime.invoke_endpoint(EndpointName=stage.endpoint_name, Body=b"{not json", ContentType="application/json")

    state = wait_for(
        lambda: cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"],
        lambda value: value == "ALARM",
        timeout=240,
        interval=5.0,
        what=f"alarm {alarm} to go to ALARM",
    )
    alarmed = wait_for(alerts.alarmed, lambda names: alarm in names, timeout=60, what="the SNS alarm")

    assert state == "ALARM"
    assert alarm in alarmed


def test_bad_input_path_fails_the_pipeline_with_the_glue_message(
    first_run: dict[str, Any], aws: Callable[[str], Any], stage: StageConfig, raw_bucket: str, alerts: Inbox
) -> None:
    missing = f"s3://{raw_bucket}/incoming/missing-{int(time.time())}.csv"

    failed = _run_pipeline(stage, {"input": missing})

    assert failed["status"] == "FAILED"
    runs = aws("glue").get_job_runs(JobName=stage.glue_job_name)["JobRuns"]
    assert runs[0]["JobRunState"] == "FAILED"
    assert "missing-" in runs[0]["ErrorMessage"]
    notes = wait_for(
        alerts.read,
        lambda found: any("missing-" in m for m in found),
        timeout=60,
        what="the SNS failure notification",
    )
    assert notes


def test_a_model_below_the_gate_never_replaces_the_serving_one(
    first_run: dict[str, Any], aws: Callable[[str], Any], stage: StageConfig, raw_bucket: str, ai4i_csv: Path
) -> None:
    assert first_run["status"] == "SUCCEEDED"
    serving = aws("sagemaker").describe_endpoint(EndpointName=stage.endpoint_name)["EndpointConfigName"]
    # Labels shuffled: the features no longer explain them, so no model can pass the gate.
    lines = ai4i_csv.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split(",") for line in lines[1:]]
    label = header.split(",").index("Machine failure")
    labels = [r[label] for r in rows]
    random.Random(7).shuffle(labels)
    shuffled = "\n".join(
        [header, *(",".join([*r[:label], y, *r[label + 1 :]]) for r, y in zip(rows, labels, strict=True))]
    )
    key = "incoming/shuffled-labels.csv"
    aws("s3").put_object(Bucket=raw_bucket, Key=key, Body=shuffled.encode())

    rejected = _run_pipeline(stage, {"input": f"s3://{raw_bucket}/{key}"})

    assert rejected["status"] == "FAILED"
    assert "gate" in (rejected.get("cause", "") + rejected.get("error", "")).lower()
    after = aws("sagemaker").describe_endpoint(EndpointName=stage.endpoint_name)
    assert after["EndpointConfigName"] == serving
    assert after["EndpointStatus"] == "InService"


@pytest.fixture
def traffic(aws: Callable[[str], Any], stage: StageConfig, schema: DatasetSchema) -> Iterator[list[str]]:
    """Valid requests sent continuously to the endpoint while the test runs; yields their outcomes."""
    body = json.dumps({c.name: c.minimum if c.minimum is not None else c.categories[0] for c in schema.features})
    runtime = aws("sagemaker-runtime")
    outcomes: list[str] = []
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            try:
                runtime.invoke_endpoint(EndpointName=stage.endpoint_name, Body=body, ContentType="application/json")
                outcomes.append("ok")
            except Exception as error:  # the test counts every failure
                outcomes.append(repr(error))
            time.sleep(0.05)

    sender = threading.Thread(target=send)
    sender.start()
    yield outcomes
    stop.set()
    sender.join()


def test_retrain_updates_the_same_endpoint_without_a_failed_invocation(
    first_run: dict[str, Any], aws: Callable[[str], Any], stage: StageConfig, traffic: list[str]
) -> None:
    assert first_run["status"] == "SUCCEEDED"
    before = aws("sagemaker").describe_endpoint(EndpointName=stage.endpoint_name)
    serving_before = stage_client.serving_training_job(stage)["TrainingJobName"]

    second = _run_pipeline(stage, {})

    after = aws("sagemaker").describe_endpoint(EndpointName=stage.endpoint_name)
    assert second["status"] == "SUCCEEDED", (second.get("cause"), after.get("FailureReason"))
    assert after["EndpointArn"] == before["EndpointArn"]
    assert after["EndpointConfigName"] != before["EndpointConfigName"]
    # The new model is the one serving: the job this execution ran wrote the endpoint's model.
    serving_after = stage_client.serving_training_job(stage)
    assert serving_after["TrainingJobName"] != serving_before
    assert second["startDate"] <= serving_after["CreationTime"] <= second["stopDate"]
    failures = [o for o in traffic if o != "ok"]
    assert not failures, failures[:3]
    assert len(traffic) > 20
