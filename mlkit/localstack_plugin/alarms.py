# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""Evaluate the metric alarms community LocalStack leaves alone: percentiles and metric math.

The same thread publishes the Step Functions execution metrics (``workflow_metrics``) and the endpoint
instance metrics (``instance_metrics``).

LocalStack 4.13.1 evaluates only alarms on one metric with a plain ``Statistic``; an alarm with an
``ExtendedStatistic`` (``p99`` latency) or ``Metrics`` (an error *rate*) stays INSUFFICIENT_DATA forever.
This evaluator runs beside it: every few seconds it computes those alarms' datapoints from the raw
values in LocalStack's metric store, decides the state with LocalStack's own threshold rules, and sets
it through the CloudWatch API, so the alarm's actions (SNS) fire exactly as for LocalStack's alarms.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from localstack.services.cloudwatch import alarm_scheduler
from localstack.services.cloudwatch.cloudwatch_database_helper import CloudwatchDatabase
from localstack.services.cloudwatch.models import cloudwatch_stores

from . import alarm_math, aws, instance_metrics, workflow_metrics

LOG = logging.getLogger("mlkit.localstack.alarms")


def interval() -> float:
    """Seconds between evaluations (``MLKIT_ALARM_INTERVAL``, default 10)."""
    return float(os.environ.get("MLKIT_ALARM_INTERVAL", "10"))


def needs_us(alarm: dict[str, Any]) -> bool:
    """Whether LocalStack skips this alarm: a metric alarm without a plain ``Statistic``."""
    if "AlarmRule" in alarm:  # composite alarms are LocalStack's
        return False
    return bool(alarm.get("Metrics")) or bool(alarm.get("ExtendedStatistic") and not alarm.get("Statistic"))


class AlarmEvaluator:
    """A daemon thread evaluating every alarm :func:`needs_us` selects."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reported: set[str] = set()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="mlkit-alarm-evaluator", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(interval()):
            try:
                # The Step Functions metrics first: the pipeline alarms read them.
                workflow_metrics.EXECUTIONS.poll()
                instance_metrics.INSTANCES.poll()
                self.evaluate_all()
            except Exception:
                LOG.warning("alarm evaluation failed", exc_info=True)

    def evaluate_all(self) -> None:
        """Evaluate every alarm LocalStack does not, in every account and region."""
        if not os.path.exists(CloudwatchDatabase.METRICS_DB):
            return
        for account_id, regions in list(cloudwatch_stores.items()):
            for region, store in list(regions.items()):
                for alarm in list(store.alarms.values()):
                    details = alarm.alarm
                    if not needs_us(details):
                        continue
                    try:
                        evaluate(account_id, region, details)
                    except alarm_math.ExpressionError as error:
                        if details["AlarmArn"] not in self._reported:
                            self._reported.add(details["AlarmArn"])
                            LOG.warning("alarm %s cannot be evaluated locally: %s", details["AlarmName"], error)


def evaluate(account_id: str, region: str, alarm: dict[str, Any]) -> str:
    """Compute one alarm's state and set it when it changed; return the state."""
    period = int(alarm.get("Period") or _metrics_period(alarm))
    evaluation_periods = int(alarm["EvaluationPeriods"])
    # Like LocalStack's evaluator: look at a few more periods than the alarm evaluates.
    collected = evaluation_periods + max(math.floor(evaluation_periods / 3), 2)
    now = datetime.now(UTC)
    windows = [
        (now - timedelta(seconds=period * (i + 1)), now - timedelta(seconds=period * i)) for i in range(collected)
    ]
    with sqlite3.connect(CloudwatchDatabase.METRICS_DB_READ_ONLY, uri=True) as connection:
        store = _MetricStore(connection, account_id, region)
        values = [_datapoint(store, alarm, start, end) for start, end in reversed(windows)]
    state, reason = _decide(alarm, values)
    if state != alarm["StateValue"]:
        data = {
            "version": "1.0",
            "queryDate": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "period": period,
            "recentDatapoints": [v for v in values if v is not None],
            "threshold": alarm["Threshold"],
            "evaluatedBy": "mlops-kit plugin (percentiles and metric math)",
        }
        aws.clients(account_id, region).cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason, StateReasonData=json.dumps(data)
        )
    return state


def _decide(alarm: dict[str, Any], values: list[float | None]) -> tuple[str, str]:
    """Apply LocalStack's own M-out-of-N and missing-data rules to the datapoints.

    When missing data counts as breaching or not breaching (every alarm of the kit), only the last
    ``EvaluationPeriods`` periods are judged, as CloudWatch does: LocalStack's rules count breaches over
    all the periods collected, which would hold an alarm in ALARM for minutes after its last breach.
    """
    treat_missing = alarm.get("TreatMissingData", "missing")
    if treat_missing in ("breaching", "notBreaching"):
        values = values[-int(alarm["EvaluationPeriods"]) :]
    if all(v is None for v in values):
        state = {"breaching": "ALARM", "notBreaching": "OK", "ignore": alarm["StateValue"]}.get(
            treat_missing, "INSUFFICIENT_DATA"
        )
        return state, f"no datapoints were received for {alarm['EvaluationPeriods']} period(s) [{treat_missing}]"
    recent = [round(v, 3) for v in values if v is not None][-5:]
    if alarm_scheduler.is_threshold_exceeded(values, alarm) or alarm_scheduler.is_triggering_premature_alarm(
        values, alarm
    ):
        return "ALARM", f"Threshold Crossed: recent datapoints {recent} crossed the threshold ({alarm['Threshold']})."
    return "OK", f"Threshold Crossed: recent datapoints {recent} were not beyond the threshold ({alarm['Threshold']})."


def _metrics_period(alarm: dict[str, Any]) -> int:
    periods = [q["MetricStat"]["Period"] for q in alarm.get("Metrics") or [] if q.get("MetricStat")]
    return int(min(periods)) if periods else 60


def _datapoint(store: _MetricStore, alarm: dict[str, Any], start: datetime, end: datetime) -> float | None:
    """The alarm's value for one period: its percentile, or its metric-math expression."""
    if not alarm.get("Metrics"):
        metric = {
            "Namespace": alarm.get("Namespace"),
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions"),
        }
        raw = store.raw(metric, start, end)
        return alarm_math.statistic(raw, alarm["ExtendedStatistic"])
    variables: dict[str, float | None] = {}
    for query in alarm["Metrics"]:
        if query.get("MetricStat"):
            stat = query["MetricStat"]
            raw = store.raw(stat["Metric"], start, end)
            variables[query["Id"]] = alarm_math.statistic(raw, stat["Stat"])
    pending = [q for q in alarm["Metrics"] if q.get("Expression")]
    problem: alarm_math.ExpressionError | None = None
    for _ in range(len(pending)):  # expressions may refer to each other: a pass per level of nesting
        for query in [q for q in pending if q["Id"] not in variables]:
            try:
                variables[query["Id"]] = alarm_math.evaluate(query["Expression"], variables)
            except alarm_math.ExpressionError as error:
                problem = error
    returned = [q["Id"] for q in alarm["Metrics"] if q.get("ReturnData", True)]
    if not returned or returned[-1] not in variables:
        raise problem or alarm_math.ExpressionError(f"no ReturnData entry among {[q['Id'] for q in alarm['Metrics']]}")
    return variables[returned[-1]]


@dataclass
class _MetricStore:
    """Read access to LocalStack's metric database for one account and region."""

    connection: sqlite3.Connection
    account_id: str
    region: str

    def raw(self, metric: dict[str, Any], start: datetime, end: datetime) -> list[float]:
        """Raw values of one metric in ``[start, end)`` (LocalStack keeps single datapoints unaggregated)."""
        dimensions = CloudwatchDatabase._get_ordered_dimensions_with_separator(
            None, list(metric.get("Dimensions") or [])
        )
        rows = self.connection.execute(
            "SELECT value FROM SINGLE_METRICS WHERE account_id = ? AND region = ? AND namespace = ?"
            " AND metric_name = ? AND dimensions IS ? AND timestamp >= ? AND timestamp < ?",
            (
                self.account_id,
                self.region,
                metric.get("Namespace"),
                metric["MetricName"],
                dimensions,
                int(start.timestamp()),
                int(end.timestamp()),
            ),
        ).fetchall()
        return [float(row[0]) for row in rows]


EVALUATOR = AlarmEvaluator()
