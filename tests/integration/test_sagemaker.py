"""SageMaker through LocalStack: a real training job, a real endpoint, its metrics, data capture and updates.

The training job runs the deployable ``train.py`` through the training contract on the curated splits the
real Glue job wrote; the endpoint serves the resulting ``model.tar.gz`` with the endpoint emulation.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from localstack_helpers import ROLE, create_training_job, wait_for, wait_training

from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.integration

VARIANT = "AllTraffic"


def test_training_job_completes_with_model_metrics_and_logs(aws: Callable[[str], Any], trained: dict[str, Any]) -> None:
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    name = trained["TrainingJobName"]
    artifact = trained["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact.endswith(f"/training/{name}/output/model.tar.gz")
    bucket, key = artifact[len("s3://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        members = archive.getnames()
    assert "1/saved_model.pb" in members
    assert "code/inference.py" in members

    metrics = {m["MetricName"]: m["Value"] for m in trained["FinalMetricDataList"]}
    assert 0.5 < metrics["test_f1"] <= 1.0
    assert {"test_roc_auc", "test_accuracy", "threshold"} <= metrics.keys()
    assert [t["Status"] for t in trained["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    streams = aws("logs").describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name)
    assert streams["logStreams"], "the job's log is in /aws/sagemaker/TrainingJobs"
    listed = aws("sagemaker").list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [j["TrainingJobStatus"] for j in listed] == ["Completed"]


def test_training_job_failure_reports_the_algorithm_error(
    aws: Callable[[str], Any], bucket: str, preprocessed: dict[str, Any], source_uri: str, unique: str
) -> None:
    name = f"bad-hp-{unique}"
    create_training_job(aws, name, source_uri, preprocessed["curated"], bucket, epochs="many")

    job = wait_training(aws, name)

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError:")
    assert "epochs" in job["FailureReason"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == ""


def test_training_job_with_an_empty_channel_fails_as_client_error(
    aws: Callable[[str], Any], bucket: str, source_uri: str, unique: str
) -> None:
    name = f"no-data-{unique}"
    create_training_job(aws, name, source_uri, f"s3://{bucket}/nothing-here-{unique}", bucket)

    job = wait_training(aws, name)

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: no objects under")


def test_a_stopped_training_job_ends_stopped(
    aws: Callable[[str], Any], bucket: str, preprocessed: dict[str, Any], source_uri: str, unique: str
) -> None:
    name = f"stopped-{unique}"
    create_training_job(aws, name, source_uri, preprocessed["curated"], bucket)

    aws("sagemaker").stop_training_job(TrainingJobName=name)  # most likely while it downloads its inputs
    job = wait_training(aws, name)

    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "Stopped"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == ""


def test_duplicate_training_job_name_is_refused(aws: Callable[[str], Any], trained: dict[str, Any]) -> None:
    sagemaker = aws("sagemaker")
    with pytest.raises(sagemaker.exceptions.ResourceInUse):
        create_training_job(aws, trained["TrainingJobName"], "s3://x/y.tar.gz", "s3://x/curated", "x")


def test_invalid_metric_regex_is_refused_at_creation(aws: Callable[[str], Any], unique: str) -> None:
    sagemaker = aws("sagemaker")
    with pytest.raises(sagemaker.exceptions.ClientError) as refused:
        sagemaker.create_training_job(
            TrainingJobName=f"bad-regex-{unique}",
            AlgorithmSpecification={
                "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19-cpu-py312",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "f1", "Regex": "f1=([0-9."}],
            },
            RoleArn="arn:aws:iam::000000000000:role/training",
            OutputDataConfig={"S3OutputPath": "s3://x/training"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'f1'" in refused.value.response["Error"]["Message"]
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_training_job(TrainingJobName=f"bad-regex-{unique}")


# ---- endpoints ------------------------------------------------------------------------------------


def _model_and_config(aws: Callable[[str], Any], trained: dict[str, Any], bucket: str, name: str) -> str:
    sagemaker = aws("sagemaker")
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.19-cpu",
            "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": VARIANT, "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
        },
    )
    return name


def _wait_in_service(aws: Callable[[str], Any], name: str) -> dict[str, Any]:
    described: dict[str, Any] = wait_for(
        lambda: aws("sagemaker").describe_endpoint(EndpointName=name),
        lambda d: d["EndpointStatus"] not in ("Creating", "Updating"),
        timeout=300,
        what=f"endpoint {name}",
    )
    return described


@pytest.fixture(scope="module")
def endpoint(aws: Callable[[str], Any], trained: dict[str, Any], bucket: str) -> Iterator[str]:
    """An InService endpoint serving the trained model, with data capture on."""
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    name = f"ep-{int(time.time())}"
    config = _model_and_config(aws, trained, bucket, f"{name}-a")
    aws("sagemaker").create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert aws("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
    described = _wait_in_service(aws, name)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    yield name
    aws("sagemaker").delete_endpoint(EndpointName=name)


@pytest.fixture(scope="module")
def requests(aws: Callable[[str], Any], preprocessed: dict[str, Any], schema: DatasetSchema) -> list[tuple[str, str]]:
    """``(row id, JSON body of its raw features)`` for each row of the curated test split the Glue job wrote."""
    bucket, prefix = preprocessed["curated"][len("s3://") :].split("/", 1)
    body = aws("s3").get_object(Bucket=bucket, Key=f"{prefix}/test/part-00000-of-00001.csv")["Body"].read()
    rows = csv.DictReader(io.StringIO(body.decode()))
    return [(row[schema.id_column], json.dumps({c.name: row[c.name] for c in schema.features})) for row in rows]


def test_endpoint_serves_the_offline_predictions(
    aws: Callable[[str], Any], endpoint: str, trained: dict[str, Any], requests: list[tuple[str, str]]
) -> None:
    runtime = aws("sagemaker-runtime")
    offline = _offline_predictions(aws, trained)

    for row_id, body in requests[:40]:
        response = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json")
        prediction = json.loads(response["Body"].read())["predictions"][0]
        probability, label = offline[row_id]
        assert response["InvokedProductionVariant"] == VARIANT
        assert abs(_probability(prediction) - probability) < 1e-5
        assert _label(prediction) == label


def test_malformed_request_is_a_model_error_with_the_original_4xx(aws: Callable[[str], Any], endpoint: str) -> None:
    runtime = aws("sagemaker-runtime")

    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b'{"Torque [Nm]": "lots"}', ContentType="application/json")

    assert raised.value.response["OriginalStatusCode"] == 400
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_unknown_endpoint_is_a_validation_error(aws: Callable[[str], Any], unique: str) -> None:
    runtime = aws("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ClientError, match="not found"):
        runtime.invoke_endpoint(EndpointName=f"nope-{unique}", Body=b"{}", ContentType="application/json")
    with pytest.raises(aws("sagemaker").exceptions.ClientError, match="Could not find endpoint"):
        aws("sagemaker").describe_endpoint(EndpointName=f"nope-{unique}")


def test_invocations_publish_aws_sagemaker_metrics(
    aws: Callable[[str], Any], endpoint: str, requests: list[tuple[str, str]]
) -> None:
    runtime = aws("sagemaker-runtime")
    for _row_id, body in requests[:5]:
        runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json")
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"not json", ContentType="application/json")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]

    def statistic(metric: str, stat: str) -> tuple[float, set[str]]:
        now = datetime.now(UTC)
        points = aws("cloudwatch").get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=now - timedelta(minutes=30),
            EndTime=now + timedelta(minutes=2),
            Period=60,
            Statistics=[stat],
        )["Datapoints"]
        return sum(p[stat] for p in points), {p.get("Unit", "") for p in points}

    wait_for(
        lambda: statistic("Invocation4XXErrors", "Sum")[0], lambda total: total >= 1, timeout=30, what="4XX metric"
    )
    # Metrics are published in the background about once a second: wait until two reads agree.
    invocations, per_instance = wait_for(
        lambda: (statistic("Invocations", "Sum")[0], statistic("InvocationsPerInstance", "Sum")[0]),
        lambda pair: pair[0] == pair[1],
        timeout=30,
        what="Invocations and InvocationsPerInstance to settle",
    )
    errors_5xx, _ = statistic("Invocation5XXErrors", "Sum")
    samples, latency_units = statistic("ModelLatency", "SampleCount")
    latency_total, _ = statistic("ModelLatency", "Sum")
    _, overhead_units = statistic("OverheadLatency", "SampleCount")

    assert invocations >= 6
    assert errors_5xx == 0
    assert samples >= 6
    assert latency_units == {"Microseconds"}
    # The values are microseconds too: a model call here takes milliseconds, so its average lies well
    # above 100 and below a second (milliseconds would average a few units, nanoseconds millions).
    assert 100 < latency_total / samples < 1_000_000
    assert overhead_units == {"Microseconds"}
    assert per_instance == invocations  # one instance: 1/1 per request
    listed = aws("cloudwatch").list_metrics(Namespace="AWS/SageMaker", Dimensions=dimensions)["Metrics"]
    assert {m["MetricName"] for m in listed} >= {
        "Invocations",
        "InvocationsPerInstance",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
    }


def test_data_capture_writes_the_documented_json_lines(
    aws: Callable[[str], Any], endpoint: str, bucket: str, requests: list[tuple[str, str]]
) -> None:
    body = requests[0][1]
    answer = aws("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json")
    response = answer["Body"].read().decode()
    prefix = f"capture/{endpoint}/{VARIANT}/"

    objects = wait_for(
        lambda: aws("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []),
        bool,
        timeout=30,
        what="capture files",
    )

    key = objects[0]["Key"]
    year, month, day, hour = key[len(prefix) :].split("/")[:4]
    assert datetime.strptime(f"{year}{month}{day}{hour}", "%Y%m%d%H")
    assert key.endswith(".jsonl")
    lines = [
        (o["Key"], json.loads(line))
        for o in objects
        for line in aws("s3").get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode().splitlines()
    ]
    record_key, record = next((k, r) for k, r in lines if r["captureData"]["endpointInput"]["data"] == body)
    assert record["eventVersion"] == "0"
    assert set(record["eventMetadata"]) >= {"eventId", "inferenceTime"}
    for side, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
        entry = record["captureData"][side]
        assert set(entry) == {"observedContentType", "mode", "data", "encoding"}
        assert entry["mode"] == mode
        assert entry["encoding"] == "JSON"
    # The file sits under the hour of its inference, and the captured output is the response itself.
    inferred = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))
    assert record_key.startswith(f"{prefix}{inferred:%Y/%m/%d/%H}/")
    assert json.loads(record["captureData"]["endpointOutput"]["data"]) == json.loads(response)
    assert record["captureData"]["endpointOutput"]["observedContentType"] == answer["ContentType"]


def test_update_swaps_the_model_without_a_failed_invocation(
    aws: Callable[[str], Any],
    endpoint: str,
    trained: dict[str, Any],
    bucket: str,
    requests: list[tuple[str, str]],
) -> None:
    sagemaker, runtime = aws("sagemaker"), aws("sagemaker-runtime")
    config = _model_and_config(aws, trained, bucket, f"{endpoint}-b")
    body = requests[0][1]
    outcomes: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json")
                outcomes.append("ok")
            except Exception as error:  # every failure is what this test counts
                outcomes.append(repr(error))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
        described = _wait_in_service(aws, endpoint)
        time.sleep(1.0)  # traffic on the new servers too
    finally:
        stop.set()
        sender.join()

    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    assert described["EndpointConfigName"] == config
    failures = [o for o in outcomes if o != "ok"]
    assert not failures, failures[:3]
    assert len(outcomes) > 10


def test_model_registry_holds_versioned_packages(
    aws: Callable[[str], Any], trained: dict[str, Any], unique: str
) -> None:
    sagemaker = aws("sagemaker")
    group = f"registry-{unique}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription="test group")
    specification = {
        "Containers": [{"Image": "tfs", "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }

    first = sagemaker.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=specification, ModelApprovalStatus="Approved"
    )["ModelPackageArn"]
    sagemaker.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=specification, ModelApprovalStatus="PendingManualApproval"
    )

    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert sorted(p["ModelPackageVersion"] for p in packages) == [1, 2]
    described = sagemaker.describe_model_package(ModelPackageName=first)
    assert described["ModelApprovalStatus"] == "Approved"
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupName"] == group


def test_delete_endpoint_removes_it(
    aws: Callable[[str], Any], trained: dict[str, Any], bucket: str, unique: str
) -> None:
    sagemaker = aws("sagemaker")
    name = f"short-{unique}"
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=_model_and_config(aws, trained, bucket, name))
    assert _wait_in_service(aws, name)["EndpointStatus"] == "InService"

    sagemaker.delete_endpoint(EndpointName=name)

    assert name not in {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find endpoint"):
        sagemaker.describe_endpoint(EndpointName=name)


def _offline_predictions(aws: Callable[[str], Any], trained: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """``test_predictions.csv`` from the job's ``output.tar.gz`` (SM_OUTPUT_DATA_DIR): id -> (probability, label)."""
    uri = trained["ModelArtifacts"]["S3ModelArtifacts"].replace("/model.tar.gz", "/output.tar.gz")
    bucket, key = uri[len("s3://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        member = next(m for m in archive.getmembers() if Path(m.name).name == "test_predictions.csv")
        handle = archive.extractfile(member)
        assert handle is not None
        rows = csv.DictReader(io.StringIO(handle.read().decode()))
        return {r["id"]: (float(r["probability"]), int(r["predicted"])) for r in rows}


def _probability(prediction: Any) -> float:
    return float(prediction["probability"] if isinstance(prediction, dict) else prediction[0])


def _label(prediction: Any) -> int:
    return int(prediction["label"] if isinstance(prediction, dict) else prediction[1])


def test_endpoint_with_an_unservable_model_fails_with_a_reason(
    aws: Callable[[str], Any], bucket: str, unique: str
) -> None:
    sagemaker = aws("sagemaker")
    aws("s3").put_object(Bucket=bucket, Key=f"broken/{unique}/model.tar.gz", Body=b"not a tarball")
    name = f"broken-{unique}"
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "tfs", "ModelDataUrl": f"s3://{bucket}/broken/{unique}/model.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": VARIANT, "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )

    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    described = _wait_in_service(aws, name)

    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"]
    with pytest.raises(aws("sagemaker-runtime").exceptions.ClientError, match="not ready"):
        aws("sagemaker-runtime").invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
    sagemaker.delete_endpoint(EndpointName=name)
