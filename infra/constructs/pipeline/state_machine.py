"""The ``TrainingPipeline`` construct: the state machine, its log group and its role."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.log_retention import retention_days
from infra.constructs.pipeline.deploy_steps import deploy_steps
from infra.constructs.pipeline.failure import FailureRoute
from infra.constructs.pipeline.model_steps import model_steps
from infra.constructs.pipeline.preprocess_steps import preprocess_steps
from infra.constructs.pipeline.resources import PipelineResources, StepContext
from infra.constructs.pipeline.training_steps import training_steps
from infra.nag import acknowledge, resource_finding

__all__ = ["PipelineResources", "TrainingPipeline"]


class TrainingPipeline(Construct):
    """Preprocess -> train (polled) -> quality gate -> register -> model -> endpoint config -> deploy.

    Execution input (optional): ``{"input": "s3://<bucket>/<key>.csv"}``; without it the run reads
    the configured raw key. Every failure publishes to the alerts topic, then fails the execution
    with the error and cause of the step that failed.

    Attributes:
        state_machine: The state machine.
        log_group: Its execution log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resources: PipelineResources,
        training_output_prefix: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        """Create the state machine.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            resources: What the states operate on.
            training_output_prefix: Prefix of training output in the artifacts bucket.
            removal_policy: Of the log group.
        """
        super().__init__(scope, construct_id)
        config = resources.config
        ctx = StepContext(
            scope=self,
            resources=resources,
            failure=FailureRoute(self, topic=resources.topic, pipeline_name=config.state_machine_name),
        )
        deploy = deploy_steps(ctx)
        register = model_steps(ctx, deploy)
        train = training_steps(ctx, register, training_output_prefix=training_output_prefix)
        start = preprocess_steps(ctx, train)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The /aws/vendedlogs/ prefix keeps the log resource policy small when many machines log.
            log_group_name=f"/aws/vendedlogs/states/{config.state_machine_name}",
            retention=retention_days(config.retention.log_days),
            encryption_key=resources.encryption_key,
            removal_policy=removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=config.state_machine_name,
            comment="Preprocess (Glue), train, quality gate, register, deploy (SageMaker); polls, no .sync",
            definition_body=sfn.DefinitionBody.from_chainable(start),
            timeout=Duration.hours(config.pipeline_timeout_hours),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        # The alerts topic is KMS-encrypted: "Notify failure" needs the key as well as sns:Publish, which is
        # all the SnsPublish task grants; without it every failure notification would be refused by KMS.
        resources.topic.grant_publish(self.state_machine)
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5",
            "kms:GenerateDataKey* is the data-key action family SNS needs to encrypt a message with the kit's "
            "single key (granted on that key only).",
            applies_to=["Action::kms:GenerateDataKey*"],
        )
        # X-Ray tracing and CloudWatch Logs delivery (added by CDK) support no resource-level permissions.
        ctx.allow_wildcard(
            "*",
            ctx.wildcards.get("*", "")
            + " X-Ray trace segments and CloudWatch Logs vended delivery (execution logging) accept no resource ARN.",
        )
        for resource, reason in ctx.wildcards.items():
            acknowledge(
                self.state_machine.role,
                "AwsSolutions-IAM5",
                reason.strip(),
                applies_to=[resource_finding(self.state_machine, resource)],
            )
