"""Alarms on the endpoint: p99 model latency (in microseconds) and the 5XX and 4XX error rates."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import AlarmSettings
from infra.constructs.metrics import EndpointMetrics


class EndpointAlarms(Construct):
    """Three alarms on one endpoint variant, notifying the alerts topic.

    The endpoint does not exist when these are created (the pipeline creates it): until it serves,
    its metrics are missing, which counts as not breaching.

    Attributes:
        latency: ModelLatency p99 above the threshold in microseconds.
        server_errors: 5XX share of invocations above the threshold (%).
        client_errors: 4XX share of invocations above the threshold (%).
        rollback_alarms: The alarms that roll a blue/green endpoint update back: the model's fault
            (latency, 5XX). A 4XX burst is the callers' fault and must not undo a deployment.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        settings: AlarmSettings,
        alarm_names: dict[str, str],
        topic: sns.ITopic,
    ) -> None:
        """Create the alarms.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            endpoint_name: The endpoint's stable name.
            variant_name: Its production variant.
            settings: Thresholds and evaluation windows.
            alarm_names: Physical names keyed ``latency``, ``server_errors`` and ``client_errors``; the
                pipeline's rollback configuration refers to the alarms by these names.
            topic: Where the alarms notify.
        """
        super().__init__(scope, construct_id)
        missing = {"latency", "server_errors", "client_errors"} - set(alarm_names)
        if missing:
            raise ValueError(f"{construct_id}: alarm_names lacks {sorted(missing)}")
        metrics = EndpointMetrics(
            endpoint_name=endpoint_name, variant_name=variant_name, period=Duration.seconds(settings.period_seconds)
        )

        def alarm(construct_id: str, name: str, metric: cw.IMetric, threshold: float, what: str) -> cw.Alarm:
            created = cw.Alarm(
                self,
                construct_id,
                alarm_name=name,
                alarm_description=f"{endpoint_name}/{variant_name}: {what}",
                metric=metric,
                threshold=threshold,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=settings.evaluation_periods,
                datapoints_to_alarm=settings.datapoints_to_alarm,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(cw_actions.SnsAction(topic))
            return created

        threshold_us = settings.model_latency_p99_us
        self.latency = alarm(
            "ModelLatencyP99",
            alarm_names["latency"],
            metrics.latency("p99", labelled=False),
            threshold_us,
            f"ModelLatency p99 above {threshold_us} µs ({threshold_us / 1000:g} ms)",
        )
        self.server_errors = alarm(
            "ServerErrorRate",
            alarm_names["server_errors"],
            metrics.error_rate("5XX"),
            settings.max_5xx_rate_percent,
            f"more than {settings.max_5xx_rate_percent:g} % of invocations answered 5XX",
        )
        self.client_errors = alarm(
            "ClientErrorRate",
            alarm_names["client_errors"],
            metrics.error_rate("4XX"),
            settings.max_4xx_rate_percent,
            f"more than {settings.max_4xx_rate_percent:g} % of invocations answered 4XX",
        )
        self.rollback_alarms: tuple[cw.Alarm, ...] = (self.latency, self.server_errors)
