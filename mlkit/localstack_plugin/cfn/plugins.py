# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""plux plugin classes: one per resource type, each loading its provider only when a stack uses the type."""

from __future__ import annotations

from typing import Any

from localstack.services.cloudformation.resource_provider import CloudFormationResourceProviderPlugin


class _Plugin(CloudFormationResourceProviderPlugin):
    """Base: subclasses name the resource type and the provider class (``module:Class``)."""

    name = ""
    provider = ""

    def __init__(self) -> None:
        self.factory: Any = None

    def load(self) -> None:
        """Import the provider module now: only stacks that use the type pay for it."""
        import importlib

        module, _, cls = self.provider.partition(":")
        self.factory = getattr(importlib.import_module(module, __package__), cls)


class SageMakerModelPlugin(_Plugin):
    """AWS::SageMaker::Model."""

    name = "AWS::SageMaker::Model"
    provider = ".sagemaker:SageMakerModelProvider"


class SageMakerEndpointConfigPlugin(_Plugin):
    """AWS::SageMaker::EndpointConfig."""

    name = "AWS::SageMaker::EndpointConfig"
    provider = ".sagemaker:SageMakerEndpointConfigProvider"


class SageMakerEndpointPlugin(_Plugin):
    """AWS::SageMaker::Endpoint."""

    name = "AWS::SageMaker::Endpoint"
    provider = ".sagemaker:SageMakerEndpointProvider"


class SageMakerModelPackageGroupPlugin(_Plugin):
    """AWS::SageMaker::ModelPackageGroup."""

    name = "AWS::SageMaker::ModelPackageGroup"
    provider = ".sagemaker:SageMakerModelPackageGroupProvider"


class GlueJobPlugin(_Plugin):
    """AWS::Glue::Job."""

    name = "AWS::Glue::Job"
    provider = ".glue_job:GlueJobProvider"


class CloudWatchDashboardPlugin(_Plugin):
    """AWS::CloudWatch::Dashboard."""

    name = "AWS::CloudWatch::Dashboard"
    provider = ".dashboard:CloudWatchDashboardProvider"


class ScalableTargetPlugin(_Plugin):
    """AWS::ApplicationAutoScaling::ScalableTarget."""

    name = "AWS::ApplicationAutoScaling::ScalableTarget"
    provider = ".autoscaling:ScalableTargetProvider"


class ScalingPolicyPlugin(_Plugin):
    """AWS::ApplicationAutoScaling::ScalingPolicy."""

    name = "AWS::ApplicationAutoScaling::ScalingPolicy"
    provider = ".autoscaling:ScalingPolicyProvider"


class GlueSecurityConfigurationPlugin(_Plugin):
    """AWS::Glue::SecurityConfiguration."""

    name = "AWS::Glue::SecurityConfiguration"
    provider = ".glue_job:GlueSecurityConfigurationProvider"
