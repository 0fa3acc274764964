"""SageMaker endpoints served by the kit's endpoint-container emulation, one server per production variant.

Create and Update start new servers from the ``model.tar.gz`` of each variant's model. The endpoint serves
from the new servers only once every one of them answers ``/ping``; until then the old servers keep
serving, so an update never fails an invocation. The old servers are stopped after their requests drain.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import aws, processes, settings


@dataclass
class Variant:
    """One production variant and the server behind it.

    Attributes:
        name: ``VariantName``.
        model_name: The SageMaker model it serves.
        image: The model's container image (reported as ``DeployedImages``).
        server: The running endpoint server.
        instance_count: Current instance count (``InvocationsPerInstance`` divides by it).
        weight: Current variant weight.
        in_flight: Requests being served right now (updates wait for them before stopping the server).
    """

    name: str
    model_name: str
    image: str
    server: processes.EndpointServer
    instance_count: int
    weight: float
    deployed_at: datetime
    in_flight: int = 0


@dataclass
class Endpoint:
    """One endpoint: its record and the variants that serve it."""

    name: str
    arn: str
    config_name: str
    status: str = "Creating"
    failure_reason: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    variants: dict[str, Variant] = field(default_factory=dict)
    capture: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> dict[str, Any]:
        """Return the endpoint as DescribeEndpoint answers it."""
        with self.lock:
            view: dict[str, Any] = {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "EndpointConfigName": self.config_name,
                "EndpointStatus": self.status,
                "CreationTime": self.created,
                "LastModifiedTime": self.modified,
            }
            if self.failure_reason:
                view["FailureReason"] = self.failure_reason
            if self.variants:
                view["ProductionVariants"] = [
                    {
                        "VariantName": v.name,
                        "DeployedImages": [
                            {"SpecifiedImage": v.image, "ResolvedImage": v.image, "ResolutionTime": v.deployed_at}
                        ],
                        "CurrentWeight": v.weight,
                        "DesiredWeight": v.weight,
                        "CurrentInstanceCount": v.instance_count,
                        "DesiredInstanceCount": v.instance_count,
                    }
                    for v in self.variants.values()
                ]
            if self.capture:
                view["DataCaptureConfig"] = {
                    "EnableCapture": bool(self.capture.get("EnableCapture", True)),
                    "CaptureStatus": "Started" if self.capture.get("EnableCapture", True) else "Stopped",
                    "CurrentSamplingPercentage": int(self.capture.get("InitialSamplingPercentage", 100)),
                    "DestinationS3Uri": self.capture.get("DestinationS3Uri", ""),
                    **({"KmsKeyId": self.capture["KmsKeyId"]} if self.capture.get("KmsKeyId") else {}),
                }
            return view

    def summary(self) -> dict[str, Any]:
        """Return the endpoint as ListEndpoints answers it."""
        with self.lock:
            return {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "CreationTime": self.created,
                "LastModifiedTime": self.modified,
                "EndpointStatus": self.status,
            }

    def pick_variant(self, target: str | None) -> Variant | None:
        """Choose the variant for one request: ``TargetVariant`` if given, else at random by weight.

        The chosen variant's :attr:`Variant.in_flight` is incremented; call :meth:`release` when done.
        """
        with self.lock:
            if target:
                chosen = self.variants.get(target)
            else:
                variants = list(self.variants.values())
                weights = [max(v.weight, 0.0) for v in variants]
                if not variants:
                    chosen = None
                elif sum(weights) <= 0:
                    chosen = variants[0]
                else:
                    chosen = random.choices(variants, weights=weights)[0]
            if chosen is not None:
                chosen.in_flight += 1
            return chosen

    def release(self, variant: Variant) -> None:
        """Mark one request on ``variant`` as finished."""
        with self.lock:
            variant.in_flight -= 1


def deploy(
    endpoint: Endpoint,
    config: Any,
    models: dict[str, Any],
    account_id: str,
    region: str,
    *,
    update: bool,
    deployment_config: dict[str, Any] | None = None,
) -> None:
    """Bring up the servers of an endpoint config, then switch the endpoint to them (runs in a thread).

    Args:
        endpoint: The endpoint being created or updated.
        config: moto's endpoint config (``production_variants``, ``data_capture_config``).
        models: moto's models by name.
        account_id: The endpoint's account.
        region: The endpoint's region.
        update: An update keeps the current servers serving until the new ones pass their pings, and keeps
            them on failure (the endpoint returns to ``InService`` with a ``FailureReason``).
        deployment_config: The request's ``DeploymentConfig``: during a blue/green update the
            ``AutoRollbackConfiguration`` alarms are watched from the switch until the baking period
            (``TerminationWaitInSeconds`` plus the traffic-routing wait) ends; one in ALARM, or alarms
            that cannot be read, roll back.
    """
    factory = aws.clients(account_id, region)
    deployment = settings.work_dir() / "endpoints" / account_id / region / endpoint.name / uuid.uuid4().hex[:12]
    started: list[Variant] = []
    try:
        for spec in config.production_variants:
            variant = _variant(
                spec, models, factory, deployment / spec["VariantName"], account_id=account_id, region=region
            )
            started.append(variant)
            variant.server.start(settings.ping_timeout())
    except Exception as error:
        for variant in started:
            variant.server.stop()
        reason = str(error)[:1024]
        with endpoint.lock:
            endpoint.status = "InService" if update and endpoint.variants else "Failed"
            endpoint.failure_reason = reason
            endpoint.modified = datetime.now(UTC)
        aws.LOG.warning("endpoint %s: deployment of %s failed: %s", endpoint.name, config.endpoint_config_name, reason)
        shutil.rmtree(deployment, ignore_errors=True)
        return
    alarms, bake = _rollback_settings(deployment_config) if update else ([], 0.0)
    rollback = _rollback_reason(factory, alarms)
    if rollback:
        _roll_back(endpoint, started, rollback, config.endpoint_config_name)
        return
    with endpoint.lock:
        if endpoint.deleted:
            retire(started)
            return
        old = list(endpoint.variants.values())
        old_state = (endpoint.config_name, endpoint.capture)
        endpoint.variants = {v.name: v for v in started}
        endpoint.config_name = config.endpoint_config_name
        endpoint.capture = dict(config.data_capture_config or {})
    deadline = time.monotonic() + bake
    while alarms and time.monotonic() < deadline and not rollback:
        time.sleep(min(5.0, max(deadline - time.monotonic(), 0.0)))
        rollback = _rollback_reason(factory, alarms)
    if rollback:
        with endpoint.lock:
            endpoint.variants = {v.name: v for v in old}
            endpoint.config_name, endpoint.capture = old_state
        _roll_back(endpoint, started, rollback, config.endpoint_config_name)
        return
    with endpoint.lock:
        endpoint.status = "InService"
        endpoint.failure_reason = None
        endpoint.modified = datetime.now(UTC)
    retire(old)


def _variant(
    spec: dict[str, Any], models: dict[str, Any], factory: Any, folder: Path, *, account_id: str, region: str
) -> Variant:
    """Download a production variant's model and prepare (not start) its server."""
    model = models.get(spec["ModelName"])
    if model is None:
        raise RuntimeError(f'Could not find model "{spec["ModelName"]}".')
    container = model.primary_container or (model.containers[0] if model.containers else {})
    model_url = container.get("ModelDataUrl")
    if not model_url:
        raise RuntimeError(f"model {spec['ModelName']} has no ModelDataUrl to serve")
    model_tar = aws.download(factory.s3, model_url, folder / "model.tar.gz")
    env = processes.aws_env(
        endpoint_url=aws.gateway_url(),
        account_id=account_id,
        region=region,
        extra={k: str(v) for k, v in (container.get("Environment") or {}).items()},
    )
    return Variant(
        name=spec["VariantName"],
        model_name=spec["ModelName"],
        image=str(container.get("Image", "")),
        server=processes.EndpointServer(model_tar, folder, env),
        instance_count=int(spec.get("InitialInstanceCount") or 1),
        weight=float(spec.get("InitialVariantWeight", 1.0)),
        deployed_at=datetime.now(UTC),
    )


def _rollback_settings(deployment_config: dict[str, Any] | None) -> tuple[list[str], float]:
    """Return the rollback alarm names and the baking period (seconds) of a ``DeploymentConfig``."""
    config = deployment_config or {}
    alarms = [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []]
    blue_green = config.get("BlueGreenUpdatePolicy") or {}
    routing = blue_green.get("TrafficRoutingConfiguration") or {}
    bake = float(blue_green.get("TerminationWaitInSeconds") or 0) + float(routing.get("WaitIntervalInSeconds") or 0)
    return alarms, bake


def _rollback_reason(factory: Any, alarms: list[str]) -> str | None:
    """Why the deployment must roll back now: rollback alarms in ALARM, or alarms that cannot be read.

    An update whose guard cannot be checked is not let through: SageMaker too needs
    ``cloudwatch:DescribeAlarms`` on the rollback alarms to deploy with them.
    """
    if not alarms:
        return None
    try:
        found = factory.cloudwatch.describe_alarms(AlarmNames=alarms).get("MetricAlarms", [])
    except Exception as error:
        return f"its rollback alarms could not be read ({type(error).__name__}: {error})"
    firing = [a["AlarmName"] for a in found if a.get("StateValue") == "ALARM"]
    return f"alarm(s) {', '.join(firing)} went into ALARM during the deployment" if firing else None


def _roll_back(endpoint: Endpoint, started: list[Variant], reason: str, config_name: str) -> None:
    """Keep the previous fleet serving and record why the update to ``config_name`` was rolled back."""
    with endpoint.lock:
        endpoint.status = "InService"
        endpoint.failure_reason = f"Update to endpoint configuration {config_name} was rolled back: {reason}."
        endpoint.modified = datetime.now(UTC)
    aws.LOG.warning("endpoint %s: %s", endpoint.name, endpoint.failure_reason)
    retire(started, drain_seconds=5.0)


def retire(variants: list[Variant], drain_seconds: float = 60.0) -> None:
    """Stop servers once their in-flight requests have finished (or after ``drain_seconds``)."""
    deadline = time.monotonic() + drain_seconds
    for variant in variants:
        while variant.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        variant.server.stop()
        _remove_deployment(variant.server.workdir)


def _remove_deployment(variant_dir: Path) -> None:
    shutil.rmtree(variant_dir, ignore_errors=True)
    parent = variant_dir.parent
    if parent.exists() and not any(parent.iterdir()):
        parent.rmdir()
