"""What the pipeline's states operate on, and the shared helpers to call SageMaker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.framework_images import FrameworkImages
from infra.constructs.pipeline.failure import FailureRoute
from infra.constructs.pipeline.retries import SAGEMAKER_TRANSIENT, retry_transient


@dataclass(frozen=True)
class PipelineResources:
    """Everything the state machine refers to.

    Attributes:
        config: The stage configuration (names, instance types, thresholds, polling).
        glue_job_name: The preprocessing job.
        raw: Bucket of the default input.
        curated: Bucket of the per-run splits.
        artifacts: Bucket of the training output.
        capture: Bucket of captured requests.
        encryption_key: Key of output, volumes and capture.
        topic: The alerts topic.
        sourcedir: The script-mode code (``sourcedir.tar.gz``) asset.
        images: Training and serving images (per-region mapping).
        training_role: Execution role of training jobs.
        hosting_role: Execution role of models.
        model_package_group_name: Registry group of approved models.
        rollback_alarm_names: Alarms that roll an endpoint update back.
        metric_definitions: SageMaker ``MetricDefinitions`` matching ``train.py``'s ``METRIC`` lines.
    """

    config: StageConfig
    glue_job_name: str
    raw: s3.IBucket
    curated: s3.IBucket
    artifacts: s3.IBucket
    capture: s3.IBucket
    encryption_key: kms.IKey
    topic: sns.ITopic
    sourcedir: s3_assets.Asset
    images: FrameworkImages
    training_role: iam.IRole
    hosting_role: iam.IRole
    model_package_group_name: str
    rollback_alarm_names: Sequence[str]
    metric_definitions: Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class StepContext:
    """What every step builder needs: the owning construct, the resources and the failure route.

    Attributes:
        scope: Construct that owns the states.
        resources: What the states operate on.
        failure: The failure route.
        wildcards: Wildcard IAM resources the steps needed, each with the reason; the pipeline
            acknowledges exactly these cdk-nag findings on its role.
    """

    scope: Construct
    resources: PipelineResources
    failure: FailureRoute
    wildcards: dict[str, str] = field(default_factory=dict)

    def allow_wildcard(self, resource: str, reason: str) -> str:
        """Record why ``resource`` (an ARN pattern or ``*``) is needed, and return it."""
        self.wildcards[resource] = reason
        return resource

    @property
    def config(self) -> StageConfig:
        """The stage configuration."""
        return self.resources.config

    def sagemaker_arn(self, resource_type: str, name: str) -> str:
        """Return the ARN of a SageMaker resource (names are lower-case in SageMaker ARNs)."""
        return Stack.of(self.scope).format_arn(service="sagemaker", resource=resource_type, resource_name=name)

    def run_arn(self, resource_type: str) -> str:
        """Return the ARN pattern of the per-run resources of this stage (``<prefix>-<run id>``)."""
        return self.allow_wildcard(
            self.sagemaker_arn(resource_type, f"{self.config.prefix}-*"),
            f"Each run creates its {resource_type} named <stage prefix>-<run uuid>; the pattern is limited to "
            "this stage's prefix.",
        )

    def sagemaker(
        self,
        state_name: str,
        action: str,
        *,
        parameters: Mapping[str, Any],
        resources: Sequence[str],
        result_path: str | None = sfn.JsonPath.DISCARD,
        result_selector: Mapping[str, Any] | None = None,
        extra_statements: Sequence[iam.PolicyStatement] = (),
        retry_errors: Sequence[str] = SAGEMAKER_TRANSIENT,
        catch: bool = True,
    ) -> tasks.CallAwsService:
        """Return an AWS SDK integration task calling SageMaker, with retries and the failure route.

        Args:
            state_name: Name of the state.
            action: API action in camelCase (``createTrainingJob``).
            parameters: Request parameters (PascalCase, as in the API).
            resources: Resource ARNs the state machine role may call the action on.
            result_path: Where the response goes; discarded by default.
            result_selector: Fields of the response to keep.
            extra_statements: Further permissions the call needs (``iam:PassRole``...).
            retry_errors: Errors retried with backoff.
            catch: Send errors (after retries) down the failure route.
        """
        task = tasks.CallAwsService(
            self.scope,
            state_name,
            service="sagemaker",
            action=action,
            iam_action=f"sagemaker:{action[0].upper()}{action[1:]}",
            iam_resources=list(resources),
            parameters=dict(parameters),
            result_path=result_path,
            result_selector=dict(result_selector) if result_selector else None,
            additional_iam_statements=list(extra_statements) or None,
        )
        retry_transient(task, retry_errors)
        if catch:
            self.failure.catch(task)
        return task

    def pass_role(self, role: iam.IRole) -> iam.PolicyStatement:
        """Return the statement letting the state machine hand ``role`` to SageMaker, and to nothing else."""
        return iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )

    def wait(self, state_name: str) -> sfn.Wait:
        """Return a Wait state of the configured polling interval."""
        return sfn.Wait(self.scope, state_name, time=sfn.WaitTime.duration(Duration.seconds(self.config.poll_seconds)))
