"""Glue through LocalStack: real job runs of the preprocessing script, failures, and Step Functions' `.sync`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from localstack_helpers import upload_file, wait_for

pytestmark = pytest.mark.integration

_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR")
# A tiny job for the orchestration tests: they test Glue's states, not Beam.
_TINY_SCRIPT = """
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("job", args["--JOB_NAME"], "run", args["--JOB_RUN_ID"])
if args.get("--outcome") == "fail":
    raise SystemExit("input s3://nowhere/raw.csv does not exist")
"""


def test_preprocess_job_run_succeeds_on_real_data(aws: Callable[[str], Any], preprocessed: dict[str, Any]) -> None:
    run = preprocessed["run"]
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["CompletedOn"] >= run["StartedOn"]

    bucket, prefix = preprocessed["curated"][len("s3://") :].split("/", 1)
    summary = json.loads(aws("s3").get_object(Bucket=bucket, Key=f"{prefix}/summary.json")["Body"].read())
    keys = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    for split in ("train", "validation", "test"):
        assert f"{prefix}/{split}/part-00000-of-00001.csv" in keys
    assert f"{prefix}/baseline/statistics.json" in keys
    assert summary["read"] == 10_000
    assert summary["read"] == summary["accepted"] + summary["rejected"] + summary["duplicates"]

    events = aws("logs").get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run["Id"])["events"]
    assert events, "the run's stdout is in /aws-glue/jobs/output"


def _sum(aws: Callable[[str], Any], namespace: str, metric: str, dimensions: list[dict[str, str]]) -> float | None:
    now = datetime.now(UTC)
    points = aws("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=now - timedelta(minutes=30),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points) if points else None


def test_glue_metrics_carry_job_dimensions(aws: Callable[[str], Any], preprocessed: dict[str, Any]) -> None:
    dimensions = [
        {"Name": "JobName", "Value": preprocessed["job"]},
        {"Name": "JobRunId", "Value": "ALL"},
        {"Name": "Type", "Value": "count"},
    ]
    completed = wait_for(
        lambda: _sum(aws, "Glue", "glue.driver.aggregate.numCompletedTasks", dimensions),
        lambda total: total is not None,
        timeout=30,
        what="Glue metrics",
    )
    assert completed >= 1
    assert _sum(aws, "Glue", "glue.driver.aggregate.numFailedTasks", dimensions) == 0


def test_bad_input_path_fails_the_run_with_a_message(aws: Callable[[str], Any], preprocessed: dict[str, Any]) -> None:
    glue = aws("glue")
    missing = preprocessed["raw"].replace("ai4i2020.csv", "missing.csv")

    run_id = glue.start_job_run(JobName=preprocessed["job"], Arguments={"--input": missing})["JobRunId"]
    run = _wait_run(glue, preprocessed["job"], run_id)

    assert run["JobRunState"] == "FAILED"
    assert "missing.csv" in run["ErrorMessage"]
    assert run["Arguments"] == {"--input": missing}
    errors = aws("logs").get_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=run_id)["events"]
    assert any("missing.csv" in e["message"] for e in errors)
    runs = glue.get_job_runs(JobName=preprocessed["job"])["JobRuns"]
    assert [r["Id"] for r in runs][:1] == [run_id], "GetJobRuns lists the newest run first"


def test_unknown_job_and_run_are_entity_not_found(aws: Callable[[str], Any], unique: str) -> None:
    glue = aws("glue")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.start_job_run(JobName=f"nope-{unique}")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job_run(JobName=f"nope-{unique}", RunId="jr_0")


def test_step_functions_glue_sync_waits_for_the_run(
    aws: Callable[[str], Any], bucket: str, unique: str, tmp_path: Path
) -> None:
    script = tmp_path / "tiny.py"
    script.write_text(_TINY_SCRIPT)
    job = f"tiny-{unique}"
    aws("glue").create_job(
        Name=job,
        Role="arn:aws:iam::000000000000:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": upload_file(aws, bucket, f"code/{job}.py", script)},
        DefaultArguments={"--outcome": "ok"},
        ExecutionProperty={"MaxConcurrentRuns": 2},
        GlueVersion="5.0",
    )
    definition = {
        "StartAt": "Preprocess",
        "States": {
            "Preprocess": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": job, "Arguments": {"--outcome.$": "$.outcome"}},
                "End": True,
            }
        },
    }
    aws("events").put_rule(
        Name=f"glue-failed-{unique}",
        EventPattern=json.dumps(
            {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"jobName": [job], "state": ["FAILED"]},
            }
        ),
    )
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"glue-sync-{unique}", definition=json.dumps(definition), roleArn="arn:aws:iam::000000000000:role/sfn"
    )["stateMachineArn"]

    succeeded = _execute(sfn, machine, {"outcome": "ok"})
    failed = _execute(sfn, machine, {"outcome": "fail"})

    assert succeeded["status"] == "SUCCEEDED", succeeded
    assert json.loads(succeeded["output"])["JobRunState"] == "SUCCEEDED"
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "States.TaskFailed"
    assert "does not exist" in json.loads(failed["cause"])["ErrorMessage"]
    # What community LocalStack does not emit, the plugin does: Step Functions' execution metrics ...
    by_machine = [{"Name": "StateMachineArn", "Value": machine}]
    failures = wait_for(
        lambda: _sum(aws, "AWS/States", "ExecutionsFailed", by_machine),
        lambda total: total is not None,
        timeout=60,
        what="AWS/States ExecutionsFailed",
    )
    assert failures == 1
    assert _sum(aws, "AWS/States", "ExecutionsSucceeded", by_machine) == 1
    # ... and Glue's state-change events, counted by the rules they match.
    by_rule = [{"Name": "RuleName", "Value": f"glue-failed-{unique}"}]
    assert (
        wait_for(
            lambda: _sum(aws, "AWS/Events", "TriggeredRules", by_rule),
            lambda total: total is not None,
            timeout=30,
            what="AWS/Events TriggeredRules",
        )
        == 1
    )


def _wait_run(glue: Any, job: str, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = wait_for(
        lambda: glue.get_job_run(JobName=job, RunId=run_id)["JobRun"],
        lambda r: r["JobRunState"] in _TERMINAL,
        timeout=300,
        what=f"Glue run {run_id}",
    )
    return run


def _execute(sfn: Any, machine: str, payload: dict[str, Any]) -> dict[str, Any]:
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    result: dict[str, Any] = wait_for(
        lambda: sfn.describe_execution(executionArn=execution),
        lambda d: d["status"] != "RUNNING",
        timeout=120,
        what=f"execution {execution}",
    )
    return result


def test_update_job_replaces_the_definition(aws: Callable[[str], Any], bucket: str, unique: str) -> None:
    glue = aws("glue")
    name = f"updated-{unique}"
    glue.create_job(
        Name=name,
        Role="arn:aws:iam::000000000000:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/code/v1.py"},
        DefaultArguments={"--input": "s3://a/old.csv"},
        GlueVersion="5.0",
    )

    glue.update_job(
        JobName=name,
        JobUpdate={
            "Role": "arn:aws:iam::000000000000:role/glue",
            "Command": {"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/code/v2.py"},
            "DefaultArguments": {"--input": "s3://a/new.csv"},
            "GlueVersion": "5.0",
        },
    )

    job = glue.get_job(JobName=name)["Job"]
    assert job["Command"]["ScriptLocation"].endswith("/v2.py")
    assert job["DefaultArguments"] == {"--input": "s3://a/new.csv"}


def test_a_stopped_run_ends_stopped(aws: Callable[[str], Any], bucket: str, unique: str, tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(300)\n")
    glue, job = aws("glue"), f"slow-{unique}"
    glue.create_job(
        Name=job,
        Role="arn:aws:iam::000000000000:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": upload_file(aws, bucket, f"code/{job}.py", script)},
        GlueVersion="5.0",
    )
    run_id = glue.start_job_run(JobName=job)["JobRunId"]

    stopped = glue.batch_stop_job_run(JobName=job, JobRunIds=[run_id])
    run = wait_for(
        lambda: glue.get_job_run(JobName=job, RunId=run_id)["JobRun"],
        lambda r: r["JobRunState"] in _TERMINAL,
        timeout=120,
        what=f"Glue run {run_id} to stop",
    )

    assert stopped["SuccessfulSubmissions"] == [{"JobName": job, "JobRunId": run_id}]
    assert run["JobRunState"] == "STOPPED"
    assert run["CompletedOn"] - run["StartedOn"] < timedelta(seconds=120)  # the 300 s script did not run out
