# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""AWS::ApplicationAutoScaling::ScalableTarget and ScalingPolicy (endpoint autoscaling), through the API."""

from __future__ import annotations

from typing import Any

from localstack.services.cloudformation.resource_provider import ProgressEvent, ResourceProvider, ResourceRequest

from .base import as_bool, as_float, as_int, coerce, load_schema, pick, success

_NUMBERS = {
    "MinCapacity": as_int,
    "MaxCapacity": as_int,
    "TargetValue": as_float,
    "ScaleInCooldown": as_int,
    "ScaleOutCooldown": as_int,
    "DisableScaleIn": as_bool,
    "Cooldown": as_int,
    "MinAdjustmentMagnitude": as_int,
    "ScalingAdjustment": as_int,
    "MetricIntervalLowerBound": as_float,
    "MetricIntervalUpperBound": as_float,
}


def _target_id(model: dict[str, Any]) -> str:
    # CloudFormation's Ref of a scalable target: "<ResourceId>|<ScalableDimension>|<ServiceNamespace>".
    return f"{model['ResourceId']}|{model['ScalableDimension']}|{model['ServiceNamespace']}"


class ScalableTargetProvider(ResourceProvider[dict[str, Any]]):
    """AWS::ApplicationAutoScaling::ScalableTarget."""

    TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"
    SCHEMA = load_schema("aws_applicationautoscaling_scalabletarget")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Register the target."""
        model = request.desired_state
        self._register(request, model)
        model["Id"] = _target_id(model)
        return success(model)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Re-register with the new capacities."""
        model = {**request.previous_state, **request.desired_state}
        self._register(request, model)
        model["Id"] = _target_id(model)
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Return the recorded model."""
        return success(request.desired_state)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Deregister the target (already gone counts as deleted)."""
        model = request.desired_state
        try:
            request.aws_client_factory.application_autoscaling.deregister_scalable_target(
                **pick(model, ("ServiceNamespace", "ResourceId", "ScalableDimension"))
            )
        except Exception as error:
            if "ObjectNotFound" not in str(error) and "No scalable target" not in str(error):
                raise
        return success({})

    @staticmethod
    def _register(request: ResourceRequest[dict[str, Any]], model: dict[str, Any]) -> None:
        params = coerce(
            pick(
                model, ("ServiceNamespace", "ResourceId", "ScalableDimension", "MinCapacity", "MaxCapacity", "RoleARN")
            ),
            _NUMBERS,
        )
        if "SuspendedState" in model:
            params["SuspendedState"] = coerce(model["SuspendedState"], {k: as_bool for k in model["SuspendedState"]})
        request.aws_client_factory.application_autoscaling.register_scalable_target(**params)


class ScalingPolicyProvider(ResourceProvider[dict[str, Any]]):
    """AWS::ApplicationAutoScaling::ScalingPolicy (Ref: the policy ARN)."""

    TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"
    SCHEMA = load_schema("aws_applicationautoscaling_scalingpolicy")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Put the policy on its target."""
        model = request.desired_state
        model["Arn"] = self._put(request, model)
        return success(model)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Put the changed policy (PutScalingPolicy replaces it)."""
        model = {**request.previous_state, **request.desired_state}
        model["Arn"] = self._put(request, model)
        return success(model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Return the recorded model."""
        return success(request.desired_state)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the policy."""
        try:
            request.aws_client_factory.application_autoscaling.delete_scaling_policy(
                PolicyName=request.desired_state["PolicyName"], **self._target(request.desired_state)
            )
        except Exception as error:
            if "ObjectNotFound" not in str(error) and "No scaling policy" not in str(error):
                raise
        return success({})

    @staticmethod
    def _target(model: dict[str, Any]) -> dict[str, str]:
        if model.get("ScalingTargetId"):
            resource_id, dimension, namespace = str(model["ScalingTargetId"]).split("|")
            return {"ResourceId": resource_id, "ScalableDimension": dimension, "ServiceNamespace": namespace}
        return pick(model, ("ResourceId", "ScalableDimension", "ServiceNamespace"))

    def _put(self, request: ResourceRequest[dict[str, Any]], model: dict[str, Any]) -> str:
        params = {"PolicyName": model["PolicyName"], "PolicyType": model["PolicyType"], **self._target(model)}
        for key in ("TargetTrackingScalingPolicyConfiguration", "StepScalingPolicyConfiguration"):
            if model.get(key):
                params[key] = coerce(model[key], _NUMBERS)
        response = request.aws_client_factory.application_autoscaling.put_scaling_policy(**params)
        return str(response["PolicyARN"])
