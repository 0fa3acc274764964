"""Helpers of the LocalStack integration tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training.metrics import metric_definitions


def wait_for(
    probe: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, interval: float = 0.5, what: str
) -> Any:
    """Call ``probe`` until ``done(result)`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not done(result):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {result!r}"[:2000])
        time.sleep(interval)
        result = probe()
    return result


def upload_file(aws: Callable[[str], Any], bucket: str, key: str, path: Path) -> str:
    """Upload ``path`` and return its ``s3://`` URI."""
    aws("s3").upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


ROLE = "arn:aws:iam::000000000000:role/sagemaker"
# Enough epochs for a useful model, few enough for the test's time budget on 2 cores.
HYPERPARAMETERS = {"epochs": "25", "patience": "6"}


def create_training_job(
    aws: Callable[[str], Any], name: str, source: str, curated: str, bucket: str, **extra: str
) -> None:
    """CreateTrainingJob for ``train.py`` in script mode with the train/validation/test channels under ``curated``."""
    aws("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19-cpu-py312",
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(),
        },
        RoleArn=ROLE,
        HyperParameters={
            "sagemaker_submit_directory": json.dumps(source),
            "sagemaker_program": json.dumps("train.py"),
            **HYPERPARAMETERS,
            **extra,
        },
        InputDataConfig=[
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{curated}/{channel}"}},
            }
            for channel in ("train", "validation", "test")
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
    )


def wait_training(aws: Callable[[str], Any], name: str) -> dict[str, Any]:
    """Wait until a training job has ended; return DescribeTrainingJob."""
    job: dict[str, Any] = wait_for(
        lambda: aws("sagemaker").describe_training_job(TrainingJobName=name),
        lambda d: d["TrainingJobStatus"] not in ("InProgress", "Stopping"),
        timeout=900,
        interval=1.0,
        what=f"training job {name}",
    )
    return job
