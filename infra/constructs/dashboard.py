"""The operations dashboard: endpoint traffic, latency, errors and instances; Glue runs; pipeline runs."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from infra.constructs.metrics import ENDPOINT_INSTANCE_NAMESPACE, EndpointMetrics, pipeline_metric, rule_matches

_WIDTH = 12
_HEIGHT = 6
_BATCH_PERIOD = Duration.minutes(5)


class OperationsDashboard(Construct):
    """One CloudWatch dashboard for the whole stage.

    Attributes:
        dashboard: The dashboard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        endpoint_name: str,
        variant_name: str,
        state_machine_name: str,
        glue_rule_names: dict[str, str],
        alarms: Sequence[cw.IAlarm],
    ) -> None:
        """Create the dashboard.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            dashboard_name: Physical name (carries the stage).
            endpoint_name: The endpoint's stable name.
            variant_name: Its production variant.
            state_machine_name: The pipeline state machine.
            glue_rule_names: EventBridge rules counting Glue runs, keyed ``glue_failed``/``glue_succeeded``.
            alarms: Alarms whose state the dashboard lists.
        """
        super().__init__(scope, construct_id)
        endpoint = EndpointMetrics(endpoint_name=endpoint_name, variant_name=variant_name, period=Duration.minutes(1))

        def graph(
            title: str, left: Sequence[cw.IMetric], right: Sequence[cw.IMetric] = (), unit: str = ""
        ) -> cw.GraphWidget:
            return cw.GraphWidget(
                title=title,
                left=list(left),
                right=list(right),
                width=_WIDTH,
                height=_HEIGHT,
                left_y_axis=cw.YAxisProps(label=unit, show_units=False) if unit else None,
            )

        def instance(name: str) -> cw.Metric:
            return endpoint.metric(name, "Average", namespace=ENDPOINT_INSTANCE_NAMESPACE, label=f"{name} (%)")

        def executions(name: str) -> cw.Metric:
            return pipeline_metric(self, state_machine_name, name, _BATCH_PERIOD)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# {dashboard_name}\nEndpoint `{endpoint_name}` (variant `{variant_name}`), "
                f"pipeline `{state_machine_name}`. Latencies are in **microseconds**.",
                width=2 * _WIDTH,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            graph(
                "Invocations",
                [endpoint.metric("Invocations", "Sum", label="invocations")],
                [endpoint.metric("InvocationsPerInstance", "Sum", label="per instance")],
            ),
            graph(
                "Latency (µs)",
                [
                    endpoint.latency("p50"),
                    endpoint.latency("p90"),
                    endpoint.latency("p99"),
                    endpoint.latency("p99", name="OverheadLatency"),
                ],
                unit="µs",
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "Errors",
                [
                    endpoint.metric("Invocation4XXErrors", "Sum", label="4XX"),
                    endpoint.metric("Invocation5XXErrors", "Sum", label="5XX"),
                ],
                [endpoint.error_rate("4XX"), endpoint.error_rate("5XX")],
            ),
            graph(
                "Instances",
                [instance("CPUUtilization"), instance("MemoryUtilization"), instance("DiskUtilization")],
                unit="%",
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "Glue preprocessing runs",
                [
                    rule_matches(glue_rule_names["glue_succeeded"], _BATCH_PERIOD, "succeeded"),
                    rule_matches(glue_rule_names["glue_failed"], _BATCH_PERIOD, "failed"),
                ],
            ),
            graph(
                "Pipeline executions",
                [
                    executions("ExecutionsStarted"),
                    executions("ExecutionsSucceeded"),
                    executions("ExecutionsFailed"),
                    executions("ExecutionsTimedOut"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=2 * _WIDTH, height=_HEIGHT)
        )
