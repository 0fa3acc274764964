# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""AWS::CloudWatch::Dashboard through CloudWatch's PutDashboard (Ref: the dashboard name)."""

from __future__ import annotations

import json
from typing import Any

from localstack.services.cloudformation import provider_utils as util
from localstack.services.cloudformation.resource_provider import ProgressEvent, ResourceProvider, ResourceRequest

from .base import failed, load_schema, success


class CloudWatchDashboardProvider(ResourceProvider[dict[str, Any]]):
    """AWS::CloudWatch::Dashboard."""

    TYPE = "AWS::CloudWatch::Dashboard"
    SCHEMA = load_schema("aws_cloudwatch_dashboard")

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Create the dashboard; a body that is not valid JSON fails the resource, as on AWS."""
        model = request.desired_state
        model["DashboardName"] = model.get("DashboardName") or util.generate_default_name(
            request.stack_name, request.logical_resource_id
        )
        return self._put(request, model)

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Replace the dashboard's body."""
        model = {**request.previous_state, **request.desired_state}
        model["DashboardName"] = request.previous_state["DashboardName"]
        return self._put(request, model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Read the dashboard."""
        name = request.desired_state["DashboardName"]
        body = request.aws_client_factory.cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"]
        return success({"DashboardName": name, "DashboardBody": body})

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        """Delete the dashboard."""
        request.aws_client_factory.cloudwatch.delete_dashboards(DashboardNames=[request.desired_state["DashboardName"]])
        return success({})

    @staticmethod
    def _put(request: ResourceRequest[dict[str, Any]], model: dict[str, Any]) -> ProgressEvent[dict[str, Any]]:
        body = model.get("DashboardBody") or "{}"
        if not isinstance(body, str):
            body = json.dumps(body)
        try:
            json.loads(body)
        except ValueError as error:
            return failed(model, f"The dashboard body is invalid: {error}")
        model["DashboardBody"] = body
        request.aws_client_factory.cloudwatch.put_dashboard(DashboardName=model["DashboardName"], DashboardBody=body)
        return success(model)
