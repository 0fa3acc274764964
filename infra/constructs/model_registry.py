"""The model registry: a SageMaker model package group that receives every approved model."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """A model package group. Packages are created by the pipeline, one per model that passed the gate.

    Attributes:
        group: The model package group.
        group_name: Its name.
    """

    def __init__(self, scope: Construct, construct_id: str, *, group_name: str, removal_policy: RemovalPolicy) -> None:
        """Create the group.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            group_name: Physical name (carries the stage).
            removal_policy: ``RETAIN`` keeps the model lineage when the stack is deleted; a group that
                still holds packages cannot be deleted anyway.
        """
        super().__init__(scope, construct_id)
        self.group_name = group_name
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description="Models that passed the pipeline's quality gate",
        )
        self.group.apply_removal_policy(removal_policy)
