"""Monitoring: the alerts topic, every alarm and the operations dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.alerts_topic import AlertsTopic
from infra.constructs.dashboard import OperationsDashboard
from infra.constructs.endpoint_alarms import EndpointAlarms
from infra.constructs.workflow_alarms import WorkflowAlarms


def endpoint_alarm_names(config: StageConfig) -> dict[str, str]:
    """Physical names of the endpoint alarms; the pipeline's rollback configuration uses them too."""
    return {
        "latency": config.alarm_name("endpoint-model-latency-p99"),
        "server_errors": config.alarm_name("endpoint-5xx-rate"),
        "client_errors": config.alarm_name("endpoint-4xx-rate"),
    }


def rollback_alarm_names(config: StageConfig) -> list[str]:
    """Alarms that roll an endpoint update back (see :class:`EndpointAlarms`)."""
    names = endpoint_alarm_names(config)
    return [names["latency"], names["server_errors"]]


class MonitoringStack(Stack):
    """Alerts topic, endpoint and workflow alarms, dashboard.

    It refers to the endpoint, the Glue job and the state machine by their configured names, so it
    deploys before them and is watching from the first pipeline run.

    Attributes:
        topic: The alerts topic (alarms and pipeline failures).
        endpoint_alarms: Latency and error-rate alarms of the endpoint.
        workflow_alarms: Glue job and pipeline failure alarms.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey, **kwargs: Any
    ) -> None:
        """Create the monitoring of ``config``'s stage; ``key`` encrypts the topic."""
        super().__init__(scope, construct_id, **kwargs)
        self.topic = AlertsTopic(
            self, "Alerts", topic_name=config.name("alerts"), encryption_key=key, email=config.alarm_email
        ).topic
        self.endpoint_alarms = EndpointAlarms(
            self,
            "EndpointAlarms",
            endpoint_name=config.endpoint_name,
            variant_name=config.endpoint.variant_name,
            settings=config.alarms,
            alarm_names=endpoint_alarm_names(config),
            topic=self.topic,
        )
        glue_rule_names = {"glue_failed": config.name("glue-failed"), "glue_succeeded": config.name("glue-succeeded")}
        self.workflow_alarms = WorkflowAlarms(
            self,
            "WorkflowAlarms",
            glue_job_name=config.glue_job_name,
            state_machine_name=config.state_machine_name,
            rule_names=glue_rule_names,
            alarm_names={
                "glue": config.alarm_name("glue-job-failed"),
                "pipeline": config.alarm_name("pipeline-failed"),
            },
            topic=self.topic,
        )
        OperationsDashboard(
            self,
            "Dashboard",
            dashboard_name=config.name("operations"),
            endpoint_name=config.endpoint_name,
            variant_name=config.endpoint.variant_name,
            state_machine_name=config.state_machine_name,
            glue_rule_names=glue_rule_names,
            alarms=[
                self.endpoint_alarms.latency,
                self.endpoint_alarms.server_errors,
                self.endpoint_alarms.client_errors,
                self.workflow_alarms.glue_failure,
                self.workflow_alarms.pipeline_failure,
            ],
        )
