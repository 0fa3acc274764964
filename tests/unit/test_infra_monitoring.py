"""Alarms in the metrics' own units, error rates by metric math, one alerts topic, the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from infra_helpers import bare_stack, synthesize

from infra.config import AlarmSettings
from infra.constructs.alerts_topic import AlertsTopic
from infra.constructs.endpoint_alarms import EndpointAlarms
from infra.stacks.monitoring_stack import endpoint_alarm_names
from infra.stages import DEV, PROD

pytestmark = pytest.mark.unit

SETTINGS = AlarmSettings(model_latency_p99_us=75_000, max_5xx_rate_percent=0.5, max_4xx_rate_percent=4.0)


@pytest.fixture(scope="module")
def alarms() -> Template:
    stack = bare_stack()
    EndpointAlarms(
        stack,
        "Alarms",
        endpoint_name="mlkit-test-endpoint",
        variant_name="AllTraffic",
        settings=SETTINGS,
        alarm_names={"latency": "lat", "server_errors": "5xx", "client_errors": "4xx"},
        topic=sns.Topic(stack, "Topic"),
    )
    return Template.from_stack(stack)


def test_latency_alarm_is_p99_model_latency_in_microseconds(alarms: Template) -> None:
    alarms.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "lat",
            "Namespace": "AWS/SageMaker",
            "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99",
            "Period": 60,
            # The metric is in microseconds: 75 ms is 75000, not 75 and not 0.075.
            "Threshold": 75_000,
            "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": Match.array_with(
                [
                    {"Name": "EndpointName", "Value": "mlkit-test-endpoint"},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ]
            ),
            "AlarmDescription": Match.string_like_regexp("75000 µs"),
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": Match.any_value()}],
        },
    )


@pytest.mark.parametrize(("name", "status_class", "threshold"), [("5xx", "5XX", 0.5), ("4xx", "4XX", 4.0)])
def test_error_alarms_are_rates_by_metric_math(
    alarms: Template, name: str, status_class: str, threshold: float
) -> None:
    found = alarms.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": name}})
    (alarm,) = found.values()
    properties = alarm["Properties"]
    assert properties["Threshold"] == threshold
    queries = {q["Id"]: q for q in properties["Metrics"]}
    expression = next(q for q in queries.values() if "Expression" in q)
    assert expression["ReturnData"] is True
    errors_id = f"errors{status_class.lower()}"
    assert expression["Expression"] == f"IF(invocations > 0, 100 * {errors_id} / invocations, 0)"
    assert queries[errors_id]["MetricStat"]["Metric"]["MetricName"] == f"Invocation{status_class}Errors"
    assert queries[errors_id]["MetricStat"]["Stat"] == "Sum"
    assert queries["invocations"]["MetricStat"]["Metric"]["MetricName"] == "Invocations"


def test_alarm_names_are_complete() -> None:
    stack = bare_stack()
    with pytest.raises(ValueError, match="alarm_names lacks"):
        EndpointAlarms(
            stack,
            "Alarms",
            endpoint_name="e",
            variant_name="v",
            settings=SETTINGS,
            alarm_names={"latency": "lat"},
            topic=sns.Topic(stack, "Topic"),
        )


@pytest.mark.parametrize("email", [None, "ops@example.com"])
def test_alerts_topic_is_encrypted_with_optional_email(email: str | None) -> None:
    stack = bare_stack()
    AlertsTopic(stack, "Alerts", topic_name="mlkit-test-alerts", encryption_key=kms.Key(stack, "Key"), email=email)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": "mlkit-test-alerts", "KmsMasterKeyId": Match.any_value()}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    template.resource_count_is("AWS::SNS::Subscription", 0 if email is None else 1)
    if email:
        template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": email})


def test_monitoring_stack_has_one_topic_and_every_alarm_notifies_it() -> None:
    template = synthesize("prod").template("monitoring")
    template.resource_count_is("AWS::SNS::Topic", 1)
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert {a["Properties"]["AlarmName"] for a in alarms.values()} == {
        *endpoint_alarm_names(PROD).values(),
        "mlkit-prod-glue-job-failed",
        "mlkit-prod-pipeline-failed",
    }
    (topic_id,) = template.find_resources("AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    latency = next(a for a in alarms.values() if a["Properties"]["AlarmName"].endswith("latency-p99"))
    assert latency["Properties"]["Threshold"] == PROD.alarms.model_latency_p99_us


def test_glue_failure_and_pipeline_failure_alarms() -> None:
    template = synthesize("dev").template("monitoring")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": "mlkit-dev-glue-failed",
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {"jobName": ["mlkit-dev-preprocess"], "state": ["FAILED", "TIMEOUT", "ERROR"]},
            },
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "mlkit-dev-glue-job-failed",
            "Namespace": "AWS/Events",
            "MetricName": "TriggeredRules",
            "Dimensions": [{"Name": "RuleName", "Value": "mlkit-dev-glue-failed"}],
            "Threshold": 1,
        },
    )
    pipeline = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": "mlkit-dev-pipeline-failed"}}
    )
    (alarm,) = pipeline.values()
    names = {q["MetricStat"]["Metric"]["MetricName"] for q in alarm["Properties"]["Metrics"] if "MetricStat" in q}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut"}


def _dashboard_body(template: dict[str, Any]) -> str:
    (dashboard,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


def test_dashboard_shows_traffic_latency_errors_instances_glue_and_pipeline() -> None:
    synthesized = synthesize("dev")
    template = synthesized.template_json("monitoring")
    body = _dashboard_body(template)
    for needle in (
        '"AWS/SageMaker","Invocations"',
        '"AWS/SageMaker","ModelLatency"',
        '"AWS/SageMaker","OverheadLatency"',
        '"stat":"p50"',
        '"stat":"p90"',
        '"stat":"p99"',
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        '"/aws/sagemaker/Endpoints","CPUUtilization"',
        '"/aws/sagemaker/Endpoints","MemoryUtilization"',
        '"AWS/Events","TriggeredRules","RuleName","mlkit-dev-glue-failed"',
        '"AWS/Events","TriggeredRules","RuleName","mlkit-dev-glue-succeeded"',
        '"AWS/States","ExecutionsStarted"',
        '"AWS/States","ExecutionsFailed"',
        "IF(invocations > 0, 100 * errors5xx / invocations, 0)",
        "Latency (µs)",
    ):
        assert needle in body, needle
    Template.from_json(template).has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "mlkit-dev-operations"}
    )
    assert DEV.endpoint_name in body
