# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""AWS::SageMaker::Model, EndpointConfig, Endpoint and ModelPackageGroup, through the SageMaker API."""

from __future__ import annotations

import re
from typing import Any

from localstack.services.cloudformation import provider_utils as util
from localstack.services.cloudformation.resource_provider import ProgressEvent, ResourceProvider, ResourceRequest

from .base import as_bool, as_float, as_int, coerce, failed, in_progress, load_schema, pick, success, tag_list

_VARIANT_NUMBERS = {
    "InitialInstanceCount": as_int,
    "InitialVariantWeight": as_float,
    "InitialSamplingPercentage": as_int,
    "EnableCapture": as_bool,
    "MaxConcurrency": as_int,
    "MemorySizeInMB": as_int,
    "VolumeSizeInGB": as_int,
    "ModelDataDownloadTimeoutInSeconds": as_int,
    "ContainerStartupHealthCheckTimeoutInSeconds": as_int,
}


def _name(request: ResourceRequest, key: str) -> str:
    """The resource's name from the template, or one CloudFormation-style (SageMaker allows [a-zA-Z0-9-])."""
    name = request.desired_state.get(key)
    if name:
        return str(name)
    generated = util.generate_default_name(request.stack_name, request.logical_resource_id)
    return re.sub(r"[^a-zA-Z0-9-]", "-", generated)[:63]


def _missing(error: Exception) -> bool:
    text = str(error)
    return "Could not find" in text or "does not exist" in text or "not found" in text.lower()


class SageMakerModelProvider(ResourceProvider[dict[str, Any]]):
    """AWS::SageMaker::Model (Ref: the model's ARN; GetAtt ModelName)."""

    TYPE = "AWS::SageMaker::Model"
    SCHEMA = load_schema("aws_sagemaker_model")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the model."""
        model = request.desired_state
        model["ModelName"] = _name(request, "ModelName")
        params = pick(model, ("ModelName", "ExecutionRoleArn", "PrimaryContainer", "Containers", "VpcConfig"))
        params.update(pick(model, ("InferenceExecutionConfig", "EnableNetworkIsolation")))
        if "EnableNetworkIsolation" in params:
            params["EnableNetworkIsolation"] = as_bool(params["EnableNetworkIsolation"])
        if model.get("Tags"):
            params["Tags"] = tag_list(model["Tags"])
        response = request.aws_client_factory.sagemaker.create_model(**params)
        model["ModelArn"] = response["ModelArn"]
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Describe the model."""
        described = request.aws_client_factory.sagemaker.describe_model(ModelName=request.desired_state["ModelName"])
        return success({**request.desired_state, "ModelArn": described["ModelArn"]})

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Only tags change in place; every other property is create-only (CloudFormation replaces)."""
        return success({**request.previous_state, **pick(request.desired_state, ("Tags",))})

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the model (already gone counts as deleted)."""
        try:
            request.aws_client_factory.sagemaker.delete_model(ModelName=request.desired_state["ModelName"])
        except Exception as error:
            if not _missing(error):
                raise
        return success({})


class SageMakerEndpointConfigProvider(ResourceProvider[dict[str, Any]]):
    """AWS::SageMaker::EndpointConfig (Ref: its ARN; GetAtt EndpointConfigName)."""

    TYPE = "AWS::SageMaker::EndpointConfig"
    SCHEMA = load_schema("aws_sagemaker_endpointconfig")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the endpoint config."""
        model = request.desired_state
        model["EndpointConfigName"] = _name(request, "EndpointConfigName")
        params = pick(
            model,
            (
                "EndpointConfigName",
                "ProductionVariants",
                "DataCaptureConfig",
                "KmsKeyId",
                "AsyncInferenceConfig",
                "ShadowProductionVariants",
                "ExplainerConfig",
            ),
        )
        params = coerce(params, _VARIANT_NUMBERS)
        if model.get("Tags"):
            params["Tags"] = tag_list(model["Tags"])
        response = request.aws_client_factory.sagemaker.create_endpoint_config(**params)
        model["EndpointConfigArn"] = response["EndpointConfigArn"]
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Describe the endpoint config."""
        name = request.desired_state["EndpointConfigName"]
        described = request.aws_client_factory.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        return success({**request.desired_state, "EndpointConfigArn": described["EndpointConfigArn"]})

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Only tags change in place; every other property is create-only (CloudFormation replaces)."""
        return success({**request.previous_state, **pick(request.desired_state, ("Tags",))})

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the endpoint config."""
        try:
            request.aws_client_factory.sagemaker.delete_endpoint_config(
                EndpointConfigName=request.desired_state["EndpointConfigName"]
            )
        except Exception as error:
            if not _missing(error):
                raise
        return success({})


class SageMakerEndpointProvider(ResourceProvider[dict[str, Any]]):
    """AWS::SageMaker::Endpoint: created or updated, then waited for until ``InService`` as CloudFormation does."""

    TYPE = "AWS::SageMaker::Endpoint"
    SCHEMA = load_schema("aws_sagemaker_endpoint")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the endpoint and wait for ``InService`` (``Failed`` fails the resource)."""
        model = request.desired_state
        sagemaker = request.aws_client_factory.sagemaker
        if not request.custom_context.get("started"):
            model["EndpointName"] = _name(request, "EndpointName")
            params = pick(model, ("EndpointName", "EndpointConfigName", "DeploymentConfig"))
            if model.get("Tags"):
                params["Tags"] = tag_list(model["Tags"])
            model["EndpointArn"] = sagemaker.create_endpoint(**params)["EndpointArn"]
            return in_progress(model, started=True)
        return self._wait(model, sagemaker)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Point the endpoint at its new config and wait until it serves from it."""
        model = {**request.previous_state, **request.desired_state}
        sagemaker = request.aws_client_factory.sagemaker
        if not request.custom_context.get("started"):
            if model.get("EndpointConfigName") != request.previous_state.get("EndpointConfigName"):
                sagemaker.update_endpoint(
                    EndpointName=model["EndpointName"], EndpointConfigName=model["EndpointConfigName"]
                )
                return in_progress(model, started=True)
            return success(model)
        return self._wait(model, sagemaker)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Describe the endpoint."""
        described = request.aws_client_factory.sagemaker.describe_endpoint(
            EndpointName=request.desired_state["EndpointName"]
        )
        return success({**request.desired_state, "EndpointArn": described["EndpointArn"]})

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the endpoint."""
        try:
            request.aws_client_factory.sagemaker.delete_endpoint(EndpointName=request.desired_state["EndpointName"])
        except Exception as error:
            if not _missing(error):
                raise
        return success({})

    @staticmethod
    def _wait(model: dict[str, Any], sagemaker: Any) -> ProgressEvent[dict[str, Any]]:
        described = sagemaker.describe_endpoint(EndpointName=model["EndpointName"])
        status = described["EndpointStatus"]
        if status == "InService":
            if described.get("FailureReason"):
                return failed(model, f"Endpoint update failed: {described['FailureReason']}")
            return success(model)
        if status == "Failed":
            return failed(model, f"Endpoint {model['EndpointName']} failed: {described.get('FailureReason', '')}")
        return in_progress(model, started=True)


class SageMakerModelPackageGroupProvider(ResourceProvider[dict[str, Any]]):
    """AWS::SageMaker::ModelPackageGroup (Ref: its ARN)."""

    TYPE = "AWS::SageMaker::ModelPackageGroup"
    SCHEMA = load_schema("aws_sagemaker_modelpackagegroup")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the group."""
        model = request.desired_state
        model["ModelPackageGroupName"] = _name(request, "ModelPackageGroupName")
        params = pick(model, ("ModelPackageGroupName", "ModelPackageGroupDescription"))
        if model.get("Tags"):
            params["Tags"] = tag_list(model["Tags"])
        sagemaker = request.aws_client_factory.sagemaker
        model["ModelPackageGroupArn"] = sagemaker.create_model_package_group(**params)["ModelPackageGroupArn"]
        described = sagemaker.describe_model_package_group(ModelPackageGroupName=model["ModelPackageGroupName"])
        model["ModelPackageGroupStatus"] = described.get("ModelPackageGroupStatus", "Completed")
        model["CreationTime"] = str(described.get("CreationTime", ""))
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Describe the group."""
        described = request.aws_client_factory.sagemaker.describe_model_package_group(
            ModelPackageGroupName=request.desired_state["ModelPackageGroupName"]
        )
        return success({**request.desired_state, "ModelPackageGroupArn": described["ModelPackageGroupArn"]})

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Description and tags only; the name is create-only."""
        return success({**request.previous_state, **request.desired_state})

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the group (its model packages first, as the API requires an empty group)."""
        sagemaker = request.aws_client_factory.sagemaker
        name = request.desired_state["ModelPackageGroupName"]
        try:
            for package in sagemaker.list_model_packages(ModelPackageGroupName=name).get("ModelPackageSummaryList", []):
                sagemaker.delete_model_package(ModelPackageName=package["ModelPackageArn"])
            sagemaker.delete_model_package_group(ModelPackageGroupName=name)
        except Exception as error:
            if not _missing(error):
                raise
        return success({})
