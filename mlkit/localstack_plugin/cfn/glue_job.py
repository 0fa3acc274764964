# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""AWS::Glue::Job through the Glue API (Ref: the job name)."""

from __future__ import annotations

import contextlib
from typing import Any

from localstack.services.cloudformation import provider_utils as util
from localstack.services.cloudformation.resource_provider import ProgressEvent, ResourceProvider, ResourceRequest

from .base import as_float, as_int, coerce, load_schema, pick, success

_JOB_FIELDS = (
    "Role",
    "Command",
    "DefaultArguments",
    "NonOverridableArguments",
    "Description",
    "GlueVersion",
    "WorkerType",
    "NumberOfWorkers",
    "MaxCapacity",
    "MaxRetries",
    "Timeout",
    "ExecutionProperty",
    "Connections",
    "LogUri",
    "SecurityConfiguration",
    "NotificationProperty",
    "ExecutionClass",
    "JobMode",
)
_NUMBERS = {
    "NumberOfWorkers": as_int,
    "MaxCapacity": as_float,
    "MaxRetries": as_int,
    "Timeout": as_int,
    "MaxConcurrentRuns": as_int,
    "NotifyDelayAfter": as_int,
    "AllocatedCapacity": as_int,
}


def _job_params(model: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = coerce(pick(model, _JOB_FIELDS), _NUMBERS)
    # The template's argument maps may hold numbers or booleans; the API takes strings.
    for key in ("DefaultArguments", "NonOverridableArguments"):
        if key in params:
            params[key] = {str(k): str(v) for k, v in params[key].items()}
    return params


class GlueJobProvider(ResourceProvider[dict[str, Any]]):
    """AWS::Glue::Job."""

    TYPE = "AWS::Glue::Job"
    SCHEMA = load_schema("aws_glue_job")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the job."""
        model = request.desired_state
        model["Name"] = model.get("Name") or util.generate_default_name(request.stack_name, request.logical_resource_id)
        params = _job_params(model)
        if model.get("Tags"):
            params["Tags"] = {str(k): str(v) for k, v in model["Tags"].items()}
        request.aws_client_factory.glue.create_job(Name=model["Name"], **params)
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Describe the job."""
        job = request.aws_client_factory.glue.get_job(JobName=request.desired_state["Name"])["Job"]
        return success({**request.desired_state, **pick(job, _JOB_FIELDS)})

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Replace the job's definition in place (UpdateJob)."""
        model = {**request.previous_state, **request.desired_state, "Name": request.previous_state["Name"]}
        request.aws_client_factory.glue.update_job(JobName=model["Name"], JobUpdate=_job_params(model))
        return success(model)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the job (DeleteJob succeeds for a missing job, as on AWS)."""
        request.aws_client_factory.glue.delete_job(JobName=request.desired_state["Name"])
        return success({})


class GlueSecurityConfigurationProvider(ResourceProvider[dict[str, Any]]):
    """AWS::Glue::SecurityConfiguration (Ref: its name): how a job encrypts S3 output, logs and bookmarks."""

    TYPE = "AWS::Glue::SecurityConfiguration"
    SCHEMA = load_schema("aws_glue_securityconfiguration")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the security configuration."""
        model = request.desired_state
        model["Name"] = model.get("Name") or util.generate_default_name(request.stack_name, request.logical_resource_id)
        request.aws_client_factory.glue.create_security_configuration(
            Name=model["Name"], EncryptionConfiguration=model.get("EncryptionConfiguration") or {}
        )
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Describe the security configuration."""
        name = request.desired_state["Name"]
        found = request.aws_client_factory.glue.get_security_configuration(Name=name)["SecurityConfiguration"]
        return success({"Name": name, "EncryptionConfiguration": found.get("EncryptionConfiguration", {})})

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Every property is create-only: CloudFormation replaces the resource instead."""
        return success({**request.previous_state, **request.desired_state})

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the security configuration (already gone counts as deleted)."""
        glue = request.aws_client_factory.glue
        with contextlib.suppress(glue.exceptions.EntityNotFoundException):
            glue.delete_security_configuration(Name=request.desired_state["Name"])
        return success({})
