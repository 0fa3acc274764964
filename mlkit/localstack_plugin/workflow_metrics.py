# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""The workflow signals AWS emits and community LocalStack does not, which the kit's alarms watch.

* ``AWS/States`` execution metrics (``ExecutionsStarted``, ``ExecutionsSucceeded``, ``ExecutionsFailed``,
  ``ExecutionsTimedOut``, ``ExecutionsAborted``, ``ExecutionTime``) with dimension ``StateMachineArn``,
  from the executions LocalStack's Step Functions ran.
* ``Glue Job State Change`` events on the default event bus when a job run ends, and the
  ``AWS/Events`` ``TriggeredRules`` metric (dimension ``RuleName``) of every rule they match.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from localstack.services.stepfunctions.backend.store import sfn_stores

from . import aws

LOG = logging.getLogger("mlkit.localstack.workflow")

_FINAL_METRICS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}


class ExecutionMetrics:
    """Publishes each execution's start and end once, as Step Functions does."""

    def __init__(self) -> None:
        self._started: set[str] = set()
        self._ended: set[str] = set()
        self._lock = threading.Lock()

    def poll(self) -> None:
        """Publish the metrics of executions that started or ended since the last poll."""
        with self._lock:
            for account_id, regions in list(sfn_stores.items()):
                for region, store in list(regions.items()):
                    pending = [arn for arn in list(store.executions) if arn not in self._ended]
                    if pending:
                        self._publish(account_id, region, pending)

    def _publish(self, account_id: str, region: str, executions: list[str]) -> None:
        factory = aws.clients(account_id, region)
        data: list[dict[str, Any]] = []
        for arn in executions:
            try:
                execution = factory.stepfunctions.describe_execution(executionArn=arn)
            except Exception:
                continue
            dimensions = [{"Name": "StateMachineArn", "Value": execution["stateMachineArn"]}]
            if arn not in self._started:
                self._started.add(arn)
                data.append(_datum("ExecutionsStarted", 1.0, dimensions, execution["startDate"]))
            final = _FINAL_METRICS.get(execution["status"])
            if final is not None:
                self._ended.add(arn)
                stopped = execution.get("stopDate") or datetime.now(UTC)
                data.append(_datum(final, 1.0, dimensions, stopped))
                milliseconds = (stopped - execution["startDate"]).total_seconds() * 1000.0
                data.append(_datum("ExecutionTime", milliseconds, dimensions, stopped, unit="Milliseconds"))
        for chunk in aws.chunks(data, 500):
            factory.cloudwatch.put_metric_data(Namespace="AWS/States", MetricData=list(chunk))


def _datum(
    name: str, value: float, dimensions: list[dict[str, str]], when: datetime, unit: str = "Count"
) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit, "Timestamp": when}


def glue_state_change(factory: Any, *, account_id: str, region: str, detail: dict[str, Any]) -> None:
    """Put a ``Glue Job State Change`` event and count the rules it triggers (``AWS/Events`` ``TriggeredRules``).

    Args:
        factory: Internal clients of the job's account and region.
        account_id: The job's account.
        region: The job's region.
        detail: ``jobName``, ``state``, ``jobRunId``, ``severity`` and ``message``, as Glue sends them.
    """
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Glue Job State Change",
        "source": "aws.glue",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }
    try:
        factory.events.put_events(
            Entries=[{"Source": "aws.glue", "DetailType": event["detail-type"], "Detail": json.dumps(detail)}]
        )
        matched = []
        for page in factory.events.get_paginator("list_rules").paginate(EventBusName="default"):
            for rule in page["Rules"]:
                pattern = rule.get("EventPattern")
                if (
                    pattern
                    and factory.events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"]
                ):
                    matched.append(rule["Name"])
        if matched:
            factory.cloudwatch.put_metric_data(
                Namespace="AWS/Events",
                MetricData=[
                    _datum("TriggeredRules", 1.0, [{"Name": "RuleName", "Value": name}], datetime.now(UTC))
                    for name in matched
                ],
            )
    except Exception:
        LOG.warning("could not publish the Glue state change of %s", detail.get("jobName"), exc_info=True)


EXECUTIONS = ExecutionMetrics()
