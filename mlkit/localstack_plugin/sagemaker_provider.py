# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""SageMaker API: training jobs and endpoints here, everything else from LocalStack's bundled moto.

Models, endpoint configs, the model registry and tags come from moto, whose backend is the one state
both sides read: an endpoint is deployed from the endpoint config and models moto holds.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

from localstack.aws.api import CommonServiceException, RequestContext, handler
from localstack.services.stores import AccountRegionBundle, BaseStore, LocalAttribute
from localstack.utils.aws.arns import get_partition
from moto.sagemaker.models import sagemaker_backends

from . import endpoints, training_jobs


class SageMakerStore(BaseStore):
    """Training jobs and endpoints of one account and region (the rest lives in moto's backend)."""

    training_jobs: dict[str, training_jobs.TrainingJob] = LocalAttribute(default=dict)
    endpoints: dict[str, endpoints.Endpoint] = LocalAttribute(default=dict)


sagemaker_stores: AccountRegionBundle = AccountRegionBundle("sagemaker", SageMakerStore)


def _validation(message: str) -> CommonServiceException:
    return CommonServiceException("ValidationException", message, sender_fault=True)


def _arn(context: RequestContext, kind: str, name: str) -> str:
    # SageMaker lower-cases resource names inside ARNs.
    return f"arn:{get_partition(context.region)}:sagemaker:{context.region}:{context.account_id}:{kind}/{name.lower()}"


def stop_all_endpoint_servers() -> None:
    """Stop every endpoint server (LocalStack is shutting down)."""
    for account_stores in list(sagemaker_stores.values()):
        for store in list(account_stores.values()):
            for endpoint in list(store.endpoints.values()):
                with endpoint.lock:
                    variants = list(endpoint.variants.values())
                    endpoint.variants = {}
                for variant in variants:
                    variant.server.stop()


class SageMakerProvider:
    """The kit's SageMaker provider; operations without a handler here go to moto."""

    service = "sagemaker"

    # ---- training jobs ----------------------------------------------------------------------------

    @handler("CreateTrainingJob", expand=False)
    def create_training_job(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Record the job and start it in a background thread."""
        store = sagemaker_stores[context.account_id][context.region]
        name = request["TrainingJobName"]
        arn = _arn(context, "training-job", name)
        if name in store.training_jobs:
            raise CommonServiceException(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job with this "
                f"name already exists ({arn})",
                sender_fault=True,
            )
        if not (request.get("OutputDataConfig") or {}).get("S3OutputPath"):
            raise _validation("OutputDataConfig.S3OutputPath is required")
        for definition in (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []:
            try:
                re.compile(definition.get("Regex", ""))
            except re.error as error:
                raise _validation(f"MetricDefinitions {definition.get('Name')!r}: Regex is invalid: {error}") from None
        job = training_jobs.new_job(request, arn)
        store.training_jobs[name] = job
        threading.Thread(
            target=training_jobs.run,
            args=(job, context.account_id, context.region),
            name=f"training-{name}"[:60],
            daemon=True,
        ).start()
        return {"TrainingJobArn": arn}

    @handler("DescribeTrainingJob", expand=False)
    def describe_training_job(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Describe a job."""
        return self._training_job(context, request["TrainingJobName"]).snapshot()

    @handler("ListTrainingJobs", expand=False)
    def list_training_jobs(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """List jobs, newest first, filtered by ``NameContains`` and ``StatusEquals``."""
        store = sagemaker_stores[context.account_id][context.region]
        jobs = [j.summary() for j in store.training_jobs.values()]
        return _page(_filtered(jobs, request, "TrainingJob"), "TrainingJobSummaries", request)

    @handler("StopTrainingJob", expand=False)
    def stop_training_job(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Stop a running job (``Stopping`` then ``Stopped``)."""
        job = self._training_job(context, request["TrainingJobName"])
        if job.status in training_jobs.TERMINAL:
            raise _validation(f"The request was rejected because the training job is in status {job.status}.")
        threading.Thread(target=training_jobs.stop, args=(job,), daemon=True).start()
        return {}

    def _training_job(self, context: RequestContext, name: str) -> training_jobs.TrainingJob:
        job = sagemaker_stores[context.account_id][context.region].training_jobs.get(name)
        if job is None:
            raise _validation(f"Requested resource not found: Training job {name} does not exist")
        return job

    # ---- endpoints ---------------------------------------------------------------------------------

    @handler("CreateEndpoint", expand=False)
    def create_endpoint(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Create an endpoint (``Creating``) and deploy its config in a background thread."""
        store = sagemaker_stores[context.account_id][context.region]
        name = request["EndpointName"]
        arn = _arn(context, "endpoint", name)
        if name in store.endpoints:
            raise _validation(f'Cannot create already existing endpoint "{arn}".')
        config = self._endpoint_config(context, request["EndpointConfigName"])
        endpoint = endpoints.Endpoint(name=name, arn=arn, config_name=config.endpoint_config_name)
        store.endpoints[name] = endpoint
        self._deploy(context, endpoint, config, update=False, deployment_config=request.get("DeploymentConfig"))
        return {"EndpointArn": arn}

    @handler("DescribeEndpoint", expand=False)
    def describe_endpoint(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Describe an endpoint."""
        return self._endpoint(context, request["EndpointName"]).describe()

    @handler("ListEndpoints", expand=False)
    def list_endpoints(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """List endpoints, newest first, filtered by ``NameContains`` and ``StatusEquals``."""
        store = sagemaker_stores[context.account_id][context.region]
        found = [e.summary() for e in store.endpoints.values()]
        return _page(_filtered(found, request, "Endpoint"), "Endpoints", request)

    @handler("UpdateEndpoint", expand=False)
    def update_endpoint(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Move an endpoint to a new config (``Updating``); the current servers serve until the new ones are up."""
        endpoint = self._endpoint(context, request["EndpointName"])
        config = self._endpoint_config(context, request["EndpointConfigName"])
        with endpoint.lock:
            if endpoint.status != "InService":
                raise _validation(
                    f'Cannot update in-progress endpoint "{endpoint.arn}".'
                    if endpoint.status in ("Creating", "Updating")
                    else f"Endpoint {endpoint.arn} is in status {endpoint.status} and cannot be updated."
                )
            endpoint.status = "Updating"
            endpoint.failure_reason = None
            endpoint.modified = datetime.now(UTC)
        self._deploy(context, endpoint, config, update=True, deployment_config=request.get("DeploymentConfig"))
        return {"EndpointArn": endpoint.arn}

    @handler("UpdateEndpointWeightsAndCapacities", expand=False)
    def update_endpoint_weights_and_capacities(
        self, context: RequestContext, request: dict[str, Any]
    ) -> dict[str, Any]:
        """Record new variant weights and instance counts (what Application Auto Scaling calls)."""
        endpoint = self._endpoint(context, request["EndpointName"])
        with endpoint.lock:
            for desired in request.get("DesiredWeightsAndCapacities") or []:
                variant = endpoint.variants.get(desired["VariantName"])
                if variant is None:
                    raise _validation(f"The variant {desired['VariantName']} does not exist on {endpoint.arn}.")
                if "DesiredWeight" in desired:
                    variant.weight = float(desired["DesiredWeight"])
                if "DesiredInstanceCount" in desired:
                    variant.instance_count = int(desired["DesiredInstanceCount"])
            endpoint.modified = datetime.now(UTC)
        return {"EndpointArn": endpoint.arn}

    @handler("DeleteEndpoint", expand=False)
    def delete_endpoint(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Delete an endpoint; its servers stop in the background."""
        store = sagemaker_stores[context.account_id][context.region]
        endpoint = self._endpoint(context, request["EndpointName"])
        del store.endpoints[endpoint.name]
        with endpoint.lock:
            endpoint.deleted = True
            endpoint.status = "Deleting"
            variants = list(endpoint.variants.values())
            endpoint.variants = {}
        threading.Thread(target=endpoints.retire, args=(variants, 5.0), daemon=True).start()
        return {}

    # ---- model registry: moto serves it, but lacks the deletes ------------------------------------

    @handler("DeleteModelPackage", expand=False)
    def delete_model_package(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Delete a model package (by name or ARN) from moto's registry."""
        backend = sagemaker_backends[context.account_id][context.region]
        arn = backend.model_package_name_mapping.get(request["ModelPackageName"])
        package = backend.model_packages.pop(arn, None) if arn else None
        if package is None:
            raise _validation(f"ModelPackage {request['ModelPackageName']} does not exist.")
        for key in [k for k, v in backend.model_package_name_mapping.items() if v == arn]:
            del backend.model_package_name_mapping[key]
        return {}

    @handler("DeleteModelPackageGroup", expand=False)
    def delete_model_package_group(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Delete an empty model package group from moto's registry (a group with versions is a conflict)."""
        backend = sagemaker_backends[context.account_id][context.region]
        name = request["ModelPackageGroupName"]
        if name not in backend.model_package_groups:
            raise _validation(f"ModelPackageGroup {name} does not exist.")
        if any(p.model_package_group_name == name for p in backend.model_packages.values()):
            raise CommonServiceException(
                "ConflictException", f"Model package group {name} still has model packages.", sender_fault=True
            )
        del backend.model_package_groups[name]
        return {}

    def _endpoint(self, context: RequestContext, name: str) -> endpoints.Endpoint:
        return get_endpoint(context.account_id, context.region, name, context.region)

    def _endpoint_config(self, context: RequestContext, name: str) -> Any:
        backend = sagemaker_backends[context.account_id][context.region]
        config = backend.endpoint_configs.get(name)
        if config is None:
            raise _validation(f'Could not find endpoint configuration "{_arn(context, "endpoint-config", name)}".')
        return config

    def _deploy(
        self,
        context: RequestContext,
        endpoint: endpoints.Endpoint,
        config: Any,
        *,
        update: bool,
        deployment_config: dict[str, Any] | None,
    ) -> None:
        backend = sagemaker_backends[context.account_id][context.region]
        threading.Thread(
            target=endpoints.deploy,
            args=(endpoint, config, backend._models, context.account_id, context.region),
            kwargs={"update": update, "deployment_config": deployment_config},
            name=f"endpoint-{endpoint.name}"[:60],
            daemon=True,
        ).start()


def get_endpoint(account_id: str, region: str, name: str, partition_region: str) -> endpoints.Endpoint:
    """Return an endpoint of the store.

    Raises:
        CommonServiceException: ``ValidationException`` "Could not find endpoint" when there is none.
    """
    endpoint = sagemaker_stores[account_id][region].endpoints.get(name)
    if endpoint is None:
        arn = f"arn:{get_partition(partition_region)}:sagemaker:{region}:{account_id}:endpoint/{name.lower()}"
        raise _validation(f'Could not find endpoint "{arn}".')
    return endpoint


def _filtered(items: list[dict[str, Any]], request: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Apply a List request's ``NameContains``, ``StatusEquals``, ``SortBy`` and ``SortOrder`` to summaries.

    ``kind`` prefixes the summary fields: ``TrainingJob`` for ``TrainingJobName``/``TrainingJobStatus``.
    """
    if contains := request.get("NameContains"):
        items = [i for i in items if contains in i[f"{kind}Name"]]
    if status := request.get("StatusEquals"):
        items = [i for i in items if i[f"{kind}Status"] == status]
    key = f"{kind}Name" if request.get("SortBy") == "Name" else "CreationTime"
    return sorted(items, key=lambda i: i[key], reverse=request.get("SortOrder", "Descending") == "Descending")


def _page(items: list[dict[str, Any]], key: str, request: dict[str, Any]) -> dict[str, Any]:
    start = int(request.get("NextToken") or 0)
    size = int(request.get("MaxResults") or 100)
    response: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        response["NextToken"] = str(start + size)
    return response
