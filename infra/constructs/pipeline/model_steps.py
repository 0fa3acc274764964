"""Register the approved model, create the SageMaker model and a new endpoint config with data capture.

Every run creates its own model and endpoint config (named ``<prefix>-<run id>``); the endpoint,
under its stable name, is then pointed at the new config (see :mod:`deploy_steps`).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.config import SERVING_TENSORFLOW_VERSION
from infra.constructs.pipeline.resources import StepContext

#: Content types the serving container's ``inference.py`` accepts, and data capture records as text.
REQUEST_CONTENT_TYPES = ("application/json", "application/jsonlines", "text/csv")
RESPONSE_CONTENT_TYPES = ("application/json",)
_MODEL_DATA = "$.training.ModelArtifacts.S3ModelArtifacts"


def model_steps(ctx: StepContext, next_state: sfn.IChainable) -> sfn.State:
    """Return the registration state; the new endpoint config leads to ``next_state``."""
    register = _register(ctx)
    create_model = _create_model(ctx)
    create_config = _create_endpoint_config(ctx)
    register.next(create_model).next(create_config).next(next_state)
    return register


def _register(ctx: StepContext) -> tasks.CallAwsService:
    res, config = ctx.resources, ctx.config
    group_arn = ctx.sagemaker_arn("model-package-group", res.model_package_group_name)
    return ctx.sagemaker(
        "Register model package",
        "createModelPackage",
        parameters={
            "ModelPackageGroupName": res.model_package_group_name,
            "ModelPackageDescription": sfn.JsonPath.format(
                "Trained by {}; passed the quality gate", sfn.JsonPath.string_at("$.run.name")
            ),
            # The gate is the approval: only models that passed it reach this state.
            "ModelApprovalStatus": "Approved",
            # Retries of this call with the same token return the same package instead of a second one.
            "ClientToken": sfn.JsonPath.string_at("$.run.id"),
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": res.images.inference_image,
                        "ModelDataUrl": sfn.JsonPath.string_at(_MODEL_DATA),
                        "Framework": "TENSORFLOW",
                        "FrameworkVersion": SERVING_TENSORFLOW_VERSION,
                    }
                ],
                "SupportedContentTypes": list(REQUEST_CONTENT_TYPES),
                "SupportedResponseMIMETypes": list(RESPONSE_CONTENT_TYPES),
                "SupportedRealtimeInferenceInstanceTypes": [config.endpoint.instance_type],
            },
            "CustomerMetadataProperties": {
                "training_job": sfn.JsonPath.string_at("$.run.name"),
                **{
                    name: sfn.JsonPath.format("{}", sfn.JsonPath.string_at(f"$.metrics.{name}"))
                    for name in config.gate_metrics
                },
            },
        },
        resources=[
            group_arn,
            ctx.allow_wildcard(
                ctx.sagemaker_arn("model-package", f"{res.model_package_group_name}/*"),
                "Model package ARNs end in a version number SageMaker assigns; the pattern is this group's.",
            ),
        ],
        result_path="$.modelPackage",
        result_selector={"arn": sfn.JsonPath.string_at("$.ModelPackageArn")},
    )


def _create_model(ctx: StepContext) -> tasks.CallAwsService:
    res = ctx.resources
    return ctx.sagemaker(
        "Create model",
        "createModel",
        parameters={
            "ModelName": sfn.JsonPath.string_at("$.run.name"),
            "ExecutionRoleArn": res.hosting_role.role_arn,
            "PrimaryContainer": {
                "Image": res.images.inference_image,
                "ModelDataUrl": sfn.JsonPath.string_at(_MODEL_DATA),
                "Environment": {"SAGEMAKER_REGION": Aws.REGION},
            },
            "EnableNetworkIsolation": ctx.config.endpoint.network_isolation,
        },
        resources=[ctx.run_arn("model")],
        extra_statements=[ctx.pass_role(res.hosting_role)],
    )


def _create_endpoint_config(ctx: StepContext) -> tasks.CallAwsService:
    res, endpoint = ctx.resources, ctx.config.endpoint
    key_arn = res.encryption_key.key_arn
    variant: dict[str, object] = {
        "VariantName": endpoint.variant_name,
        "ModelName": sfn.JsonPath.string_at("$.run.name"),
        "InstanceType": endpoint.instance_type,
        "InitialInstanceCount": endpoint.initial_instance_count,
        "InitialVariantWeight": 1,
    }
    parameters: dict[str, object] = {
        "EndpointConfigName": sfn.JsonPath.string_at("$.run.name"),
        "ProductionVariants": [variant],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "InitialSamplingPercentage": endpoint.capture_sampling_percent,
            # Files land under <bucket>/<endpoint>/<variant>/yyyy/mm/dd/hh/ (JSON Lines).
            "DestinationS3Uri": res.capture.s3_url_for_object(),
            "KmsKeyId": key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "JsonContentTypes": ["application/json", "application/jsonlines"],
                "CsvContentTypes": ["text/csv"],
            },
        },
    }
    if endpoint.encrypt_volume:
        parameters["KmsKeyId"] = key_arn
    return ctx.sagemaker(
        "Create endpoint config",
        "createEndpointConfig",
        parameters=parameters,
        resources=[ctx.run_arn("endpoint-config")],
        # SageMaker attaches the key to the endpoint's volumes and capture files through grants.
        extra_statements=[
            iam.PolicyStatement(
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        ],
    )
