"""Pipeline: the training and deployment state machine with its roles, images, registry and schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import assets
from infra.config import SERVING_TENSORFLOW_VERSION, TENSORFLOW_VERSION, TRAINING_PY_VERSION, StageConfig
from infra.constructs.framework_images import FrameworkImages
from infra.constructs.model_registry import ModelRegistry
from infra.constructs.pipeline import PipelineResources, TrainingPipeline
from infra.constructs.pipeline.preprocess_steps import RUNS_PREFIX
from infra.constructs.retrain_schedule import RetrainSchedule
from infra.constructs.sagemaker_roles import SageMakerRoles
from infra.images import tensorflow_images
from infra.stacks.data_stack import TRAINING_OUTPUT_PREFIX, DataStack
from training.metrics import metric_definitions


class PipelineStack(Stack):
    """Everything the pipeline runs with: framework images, code asset, roles, registry, state machine.

    Attributes:
        pipeline: The state machine construct.
        roles: Execution roles of training jobs and models.
        registry: The model package group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data: DataStack,
        glue_job_name: str,
        topic: sns.ITopic,
        rollback_alarm_names: Sequence[str],
        **kwargs: Any,
    ) -> None:
        """Create the pipeline of ``config``'s stage.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            config: Stage configuration.
            data: The data stack (buckets and key).
            glue_job_name: The preprocessing job.
            topic: The alerts topic.
            rollback_alarm_names: Endpoint alarms that roll an update back.
            kwargs: Stack properties.
        """
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        buckets = data.buckets_for(self)
        images = FrameworkImages(
            self,
            "TensorFlowImages",
            images=tensorflow_images(
                TENSORFLOW_VERSION,
                TRAINING_PY_VERSION,
                config.training.instance_type,
                config.endpoint.instance_type,
                SERVING_TENSORFLOW_VERSION,
            ),
        )
        sourcedir = s3_assets.Asset(self, "TrainingSourcedir", path=str(assets.training_sourcedir()))
        self.roles = SageMakerRoles(
            self,
            "SageMakerRoles",
            curated=buckets.curated,
            curated_prefix=f"{RUNS_PREFIX}/",
            artifacts=buckets.artifacts,
            artifacts_prefix=TRAINING_OUTPUT_PREFIX,
            capture=buckets.capture,
            sourcedir=sourcedir,
            images=images,
            encryption_key=buckets.key,
        )
        self.registry = ModelRegistry(
            self, "ModelRegistry", group_name=config.model_package_group_name, removal_policy=removal
        )
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            resources=PipelineResources(
                config=config,
                glue_job_name=glue_job_name,
                raw=buckets.raw,
                curated=buckets.curated,
                artifacts=buckets.artifacts,
                capture=buckets.capture,
                encryption_key=buckets.key,
                topic=topic,
                sourcedir=sourcedir,
                images=images,
                training_role=self.roles.training,
                hosting_role=self.roles.hosting,
                model_package_group_name=self.registry.group_name,
                rollback_alarm_names=rollback_alarm_names,
                metric_definitions=metric_definitions(),
            ),
            training_output_prefix=TRAINING_OUTPUT_PREFIX,
            removal_policy=removal,
        )
        self.pipeline.state_machine.node.add_dependency(self.registry)
        if config.retrain_schedule is not None:
            RetrainSchedule(
                self,
                "RetrainSchedule",
                rule_name=config.name("retrain"),
                expression=config.retrain_schedule,
                state_machine=self.pipeline.state_machine,
            )
