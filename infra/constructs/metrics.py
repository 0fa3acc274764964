"""CloudWatch metrics of the kit's resources, shared by the alarms and the dashboard.

Endpoint metrics follow the SageMaker contract: namespace ``AWS/SageMaker`` (instance metrics:
``/aws/sagemaker/Endpoints``), dimensions ``EndpointName`` and ``VariantName``, 1-minute data, and
``ModelLatency``/``OverheadLatency`` in **microseconds**.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

ENDPOINT_NAMESPACE = "AWS/SageMaker"
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
STATES_NAMESPACE = "AWS/States"
EVENTS_NAMESPACE = "AWS/Events"

#: A status class's share of invocations, in percent; a minute without traffic is 0 %, not missing data.
ERROR_RATE_EXPRESSION = "IF(invocations > 0, 100 * {errors} / invocations, 0)"


class EndpointMetrics:
    """Metric factory for one endpoint variant."""

    def __init__(self, *, endpoint_name: str, variant_name: str, period: Duration) -> None:
        """Describe the variant.

        Args:
            endpoint_name: The endpoint's stable name.
            variant_name: The production variant.
            period: Metric period (endpoint metrics have 1-minute resolution).
        """
        self.dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}
        self.period = period

    def metric(
        self, name: str, statistic: str, *, label: str | None = None, namespace: str = ENDPOINT_NAMESPACE
    ) -> cw.Metric:
        """Return one endpoint metric (``statistic`` may be a percentile such as ``p99``).

        Without a label an alarm renders the classic single-metric form (Namespace, MetricName,
        Statistic or ExtendedStatistic) rather than a one-query metric-math array.
        """
        return cw.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map=self.dimensions,
            statistic=statistic,
            period=self.period,
            label=label,
        )

    def latency(self, statistic: str, name: str = "ModelLatency", *, labelled: bool = True) -> cw.Metric:
        """Return ``ModelLatency`` or ``OverheadLatency`` at ``statistic``, in microseconds."""
        return self.metric(name, statistic, label=f"{name} {statistic} (µs)" if labelled else None)

    def error_rate(self, status_class: str) -> cw.MathExpression:
        """Return the percentage of invocations answered with ``4XX`` or ``5XX``.

        Each request records 1 or 0 in ``Invocation<class>Errors``, so Sum(errors) / Sum(invocations)
        is the error share; minutes without traffic count as 0 %, not as missing data.
        """
        errors = f"errors{status_class.lower()}"  # distinct ids: a graph may show both rates
        return cw.MathExpression(
            expression=ERROR_RATE_EXPRESSION.format(errors=errors),
            using_metrics={
                errors: self.metric(f"Invocation{status_class}Errors", "Sum"),
                "invocations": self.metric("Invocations", "Sum"),
            },
            label=f"{status_class} error rate (%)",
            period=self.period,
        )


def state_machine_arn(scope: Construct, name: str) -> str:
    """Return the ARN of the state machine called ``name`` in ``scope``'s account and region."""
    # Step Functions separates resource type and name with a colon: arn:...:stateMachine:<name>.
    return Stack.of(scope).format_arn(
        service="states", resource="stateMachine", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def pipeline_metric(scope: Construct, state_machine_name: str, name: str, period: Duration) -> cw.Metric:
    """Return an ``AWS/States`` execution metric (``ExecutionsFailed``...) of a state machine, summed."""
    return cw.Metric(
        namespace=STATES_NAMESPACE,
        metric_name=name,
        dimensions_map={"StateMachineArn": state_machine_arn(scope, state_machine_name)},
        statistic="Sum",
        period=period,
        label=name.removeprefix("Executions"),
    )


def rule_matches(rule_name: str, period: Duration, label: str | None = None) -> cw.Metric:
    """Return how often an EventBridge rule matched (``AWS/Events`` ``TriggeredRules``), summed."""
    return cw.Metric(
        namespace=EVENTS_NAMESPACE,
        metric_name="TriggeredRules",
        dimensions_map={"RuleName": rule_name},
        statistic="Sum",
        period=period,
        label=label,
    )
