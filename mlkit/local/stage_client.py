"""A deployed stage as a client sees it: its resources, its pipeline, its alerts.

Used by ``mlkit local demo`` and the integration tests alike, so both drive the stacks the same way.
Every physical name comes from the stage configuration or from CloudFormation, never typed in.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from infra.config import StageConfig
from infra.stacks.monitoring_stack import rollback_alarm_names
from mlkit.local.clients import client

#: Execution statuses after which a pipeline run will not change any more.
_FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: How long a rollback alarm left firing by earlier traffic may take to clear: its breaching period has
#: to slide out of the evaluation window (a few periods of one minute).
_ALARM_CLEAR_SECONDS = 300


class StageError(RuntimeError):
    """The deployed stage is missing something, or a run did not end in time."""


def wait_until(
    probe: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, interval: float = 1.0, what: str
) -> Any:
    """Call ``probe`` until ``done(result)`` holds and return that result.

    Raises:
        StageError: After ``timeout`` seconds, naming ``what`` and the last result.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise StageError(f"timed out after {timeout:.0f} s waiting for {what}; last: {result!r}"[:2000])
        time.sleep(interval)


def stack_resources(stage: StageConfig) -> list[dict[str, Any]]:
    """Every resource of the stage's deployed stacks."""
    cloudformation = client("cloudformation")
    resources: list[dict[str, Any]] = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            if stack["StackName"].startswith(f"{stage.prefix}-") and stack["StackStatus"] != "DELETE_COMPLETE":
                found = cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
                resources += found
    if not resources:
        raise StageError(f"stage {stage.stage!r} is not deployed; run `mlkit local deploy` first")
    return resources


def physical_id(resources: list[dict[str, Any]], kind: str, logical_contains: str = "") -> str:
    """The physical id of the one resource of type ``kind`` whose logical id contains ``logical_contains``.

    Raises:
        StageError: If there is not exactly one.
    """
    found = [
        r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == kind and logical_contains in r["LogicalResourceId"]
    ]
    if len(found) != 1:
        raise StageError(f"expected one {kind} with {logical_contains!r} in its logical id, found {found}")
    return str(found[0])


def run_pipeline(
    stage: StageConfig,
    payload: dict[str, Any] | None = None,
    *,
    timeout: float = 1200,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start one pipeline execution and wait for its end; ``say`` hears each state as it is entered.

    Args:
        stage: The deployed stage.
        payload: The execution input, e.g. ``{"input": "s3://..."}``; ``{}`` reads the configured key.
        timeout: Seconds before giving up.
        say: Called with a line per state entered (``None`` for silence).

    Returns:
        DescribeExecution of the ended execution (``status`` is SUCCEEDED, FAILED, ...).

    Raises:
        StageError: If the stage is not deployed, a rollback alarm stays in ALARM, or the run outlasts
            ``timeout``.
    """
    sfn = client("stepfunctions")
    machines = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == stage.state_machine_name]
    if not machines:
        raise StageError(f"no state machine {stage.state_machine_name}; run `mlkit local deploy` first")
    wait_for_rollback_alarms_to_clear(stage, say=say)
    arn = sfn.start_execution(stateMachineArn=machines[0]["stateMachineArn"], input=json.dumps(payload or {}))[
        "executionArn"
    ]
    started = time.monotonic()
    seen: set[str] = set()

    def probe() -> dict[str, Any]:
        if say is not None:
            for event in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
                entered = event.get("stateEnteredEventDetails")
                if entered and event["id"] not in seen:
                    seen.add(event["id"])
                    say(f"[{time.monotonic() - started:5.0f} s] {entered['name']}")
        result: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        return result

    ended: dict[str, Any] = wait_until(
        probe, lambda d: d["status"] in _FINAL, timeout=timeout, interval=2.0, what=f"pipeline execution {arn}"
    )
    return ended


def wait_for_rollback_alarms_to_clear(stage: StageConfig, *, say: Callable[[str], None] | None = None) -> None:
    """Wait until none of the alarms that roll an endpoint update back is in ALARM.

    An update deployed while one of them still fires for earlier traffic (the slow batches of a previous
    demo, say) would be rolled back at once, on AWS as here; so a run waits for them first.

    Raises:
        StageError: If one is still in ALARM after a few minutes.
    """
    cloudwatch = client("cloudwatch")
    names = rollback_alarm_names(stage)

    def firing() -> list[str]:
        alarms = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
        return [a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM"]

    now = firing()
    if not now:
        return
    if say is not None:
        say(f"waiting for {', '.join(now)} to leave ALARM first: an endpoint update would be rolled back")
    wait_until(
        firing, lambda names: not names, timeout=_ALARM_CLEAR_SECONDS, interval=5.0, what="the rollback alarms to clear"
    )


class Inbox:
    """An SQS queue subscribed to the stage's alerts topic, and every message it has received so far."""

    def __init__(self, queue_url: str) -> None:
        self.sqs = client("sqs")
        self.queue_url = queue_url
        self.messages: list[str] = []

    @classmethod
    def subscribe(cls, stage: StageConfig, queue_name: str) -> Inbox:
        """Create (or reuse) queue ``queue_name`` and subscribe it to the alerts topic (both idempotent)."""
        topic = physical_id(stack_resources(stage), "AWS::SNS::Topic")
        sqs = client("sqs")
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return cls(url)

    def read(self) -> list[str]:
        """Receive (and delete) what has arrived; return everything received so far."""
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in received.get("Messages", []):
            envelope = _json(message["Body"])  # SNS's envelope, unless raw delivery is on
            text = envelope.get("Message", message["Body"]) if isinstance(envelope, dict) else message["Body"]
            self.messages.append(str(text))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return self.messages

    def alarmed(self) -> set[str]:
        """Names of the alarms whose notification of going to ALARM has arrived so far (reads the queue)."""
        names = set()
        for message in self.read():
            body = _json(message)
            if isinstance(body, dict) and body.get("NewStateValue") == "ALARM" and body.get("AlarmName"):
                names.add(str(body["AlarmName"]))
        return names

    def drain(self) -> None:
        """Forget everything received before now (a rerun starts with an empty inbox)."""
        self.sqs.purge_queue(QueueUrl=self.queue_url)
        self.messages.clear()


def _json(text: str) -> Any:
    """``text`` parsed as JSON, or ``None`` when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def serving_training_job(stage: StageConfig) -> dict[str, Any]:
    """DescribeTrainingJob of the job whose model the stage's endpoint serves now.

    Followed from the endpoint (config, model, ``ModelDataUrl``), not taken as the newest job: a job the
    quality gate rejected completes too, and must never be mistaken for the serving one.

    Raises:
        StageError: If the endpoint does not exist or serves no model of a training job.
    """
    sagemaker = client("sagemaker")
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=stage.endpoint_name)
    except sagemaker.exceptions.ClientError as error:
        if "Could not find endpoint" not in str(error):
            raise
        raise StageError(f"stage {stage.stage!r} has no endpoint {stage.endpoint_name} yet") from None
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    model_url = str(model["PrimaryContainer"]["ModelDataUrl"])
    # SageMaker writes a job's model to <S3OutputPath>/<job name>/output/model.tar.gz.
    parts = PurePosixPath(model_url.removeprefix("s3://")).parts
    if len(parts) < 3 or parts[-2:] != ("output", "model.tar.gz"):
        raise StageError(f"{stage.endpoint_name} serves {model_url}, which is not a training job's model.tar.gz")
    job: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=parts[-3])
    if job["ModelArtifacts"]["S3ModelArtifacts"] != model_url:
        raise StageError(f"training job {parts[-3]} did not write {model_url}")
    return job


def read_s3(uri: str) -> bytes:
    """The bytes of one ``s3://bucket/key`` object."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def test_split_and_offline_predictions(
    job: dict[str, Any],
) -> tuple[list[dict[str, str]], dict[str, tuple[float, int]]]:
    """The test split a training job read, and its offline predictions keyed by row id.

    The rows come from the job's ``test`` channel; the predictions from ``test_predictions.csv`` in the
    job's ``output.tar.gz`` (what ``train.py`` wrote to ``SM_OUTPUT_DATA_DIR``).
    """
    channel = next(c for c in job["InputDataConfig"] if c["ChannelName"] == "test")
    prefix = channel["DataSource"]["S3DataSource"]["S3Uri"].rstrip("/")
    bucket, key = prefix.removeprefix("s3://").split("/", 1)
    rows: list[dict[str, str]] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{key}/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".csv"):
                text = read_s3(f"s3://{bucket}/{item['Key']}").decode("utf-8")
                rows += csv.DictReader(io.StringIO(text))
    model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    output = read_s3(model_uri.removesuffix("model.tar.gz") + "output.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(output)) as archive:
        member = next(m for m in archive.getmembers() if PurePosixPath(m.name).name == "test_predictions.csv")
        handle = archive.extractfile(member)
        if handle is None:
            raise StageError(f"test_predictions.csv in {model_uri} is not a file")
        offline = {
            r["id"]: (float(r["probability"]), int(r["predicted"]))
            for r in csv.DictReader(io.StringIO(handle.read().decode("utf-8")))
        }
    return rows, offline
