"""Retry policies for transient service errors (throttling, brief outages), with jittered backoff."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

# SageMaker models only a few errors; through AWS SDK integrations an unmodelled one, throttling
# included, surfaces as SageMaker.SageMakerException (SageMaker.AmazonSageMakerException in older SDKs).
SAGEMAKER_TRANSIENT: tuple[str, ...] = (
    "SageMaker.ThrottlingException",
    "SageMaker.SageMakerException",
    "SageMaker.AmazonSageMakerException",
    "SageMaker.InternalFailureException",
    "SageMaker.ServiceUnavailableException",
)
#: Only explicit throttling: retrying SageMakerException here would also retry "not found".
SAGEMAKER_THROTTLING: tuple[str, ...] = ("SageMaker.ThrottlingException",)
GLUE_TRANSIENT: tuple[str, ...] = (
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
    # Another run (manual or a previous execution) still holds the job's single concurrent slot.
    "Glue.ConcurrentRunsExceededException",
)
AUTOSCALING_TRANSIENT: tuple[str, ...] = (
    "ApplicationAutoScaling.ConcurrentUpdateException",
    "ApplicationAutoScaling.InternalServiceException",
    "ApplicationAutoScaling.ApplicationAutoScalingException",
)
SNS_TRANSIENT: tuple[str, ...] = ("SNS.ThrottledException", "SNS.InternalErrorException", "SNS.KmsThrottlingException")


def retry_transient(
    task: sfn.TaskStateBase, errors: Sequence[str], *, first_interval: Duration | None = None, attempts: int = 4
) -> None:
    """Retry ``task`` on ``errors`` with exponential backoff and full jitter.

    Args:
        task: The task state.
        errors: Error names to retry.
        first_interval: Wait before the first retry (default 2 s); each retry doubles it.
        attempts: Retries before the error goes to the task's catchers.
    """
    task.add_retry(
        errors=list(errors),
        interval=first_interval or Duration.seconds(2),
        backoff_rate=2.0,
        max_attempts=attempts,
        jitter_strategy=sfn.JitterType.FULL,
    )
