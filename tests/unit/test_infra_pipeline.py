"""The training pipeline state machine: polling instead of .sync, quality gate, registry, capture,
blue/green rollback, autoscaling, and a notification on every failure path."""

from __future__ import annotations

import re
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from infra_helpers import bare_stack, state_machine_definition, synthesize

from infra import assets
from infra.config import SERVING_TENSORFLOW_VERSION, StageConfig
from infra.constructs.framework_images import FrameworkImages
from infra.constructs.pipeline import PipelineResources, TrainingPipeline
from infra.images import ImageUris
from infra.stacks.monitoring_stack import rollback_alarm_names
from infra.stages import DEV, LOCAL, PROD
from training.metrics import FINAL_METRIC_NAMES, format_metric_line, metric_definitions

pytestmark = pytest.mark.unit

IMAGES = {
    "us-east-1": ImageUris(
        training="763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19-cpu-py312",
        inference="763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.20-cpu",
    )
}


@cache
def pipeline(config: StageConfig) -> tuple[Template, dict[str, Any]]:
    """Build the state machine of ``config`` in a bare stack; return its template and definition."""
    stack = bare_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Bucket", encryption_key=key)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    TrainingPipeline(
        stack,
        "Pipeline",
        resources=PipelineResources(
            config=config,
            glue_job_name=config.glue_job_name,
            raw=bucket,
            curated=bucket,
            artifacts=bucket,
            capture=bucket,
            encryption_key=key,
            topic=sns.Topic(stack, "Topic", master_key=key),
            sourcedir=s3_assets.Asset(stack, "Sourcedir", path=str(assets.training_sourcedir())),
            images=FrameworkImages(stack, "Images", images=IMAGES),
            training_role=role,
            hosting_role=role,
            model_package_group_name=config.model_package_group_name,
            rollback_alarm_names=rollback_alarm_names(config),
            metric_definitions=metric_definitions(),
        ),
        training_output_prefix="training/",
        removal_policy=RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)
    return template, state_machine_definition(template.to_json())


def states(config: StageConfig = DEV) -> dict[str, Any]:
    return dict(pipeline(config)[1]["States"])


def tasks(config: StageConfig = DEV) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in states(config).items() if s["Type"] == "Task"}


def by_action(action: str, config: StageConfig = DEV) -> dict[str, Any]:
    (found,) = [s for s in tasks(config).values() if s["Resource"].endswith(f":{action}")]
    return found


def test_sagemaker_is_called_through_sdk_integrations_without_sync() -> None:
    resources = {s["Resource"] for s in tasks().values()}
    sagemaker = {r for r in resources if "sagemaker" in r}
    assert sagemaker and all(":states:::aws-sdk:sagemaker:" in r for r in sagemaker)
    assert not any(r.endswith(".sync") and "sagemaker" in r for r in resources)
    assert "arn:<AWS::Partition>:states:::glue:startJobRun.sync" in resources


def _loop(config: StageConfig, wait: str, describe: str, choice: str) -> None:
    machine = states(config)
    assert machine[wait]["Type"] == "Wait" and machine[wait]["Seconds"] == config.poll_seconds
    assert machine[wait]["Next"] == describe
    assert machine[describe]["Next"] == choice
    assert machine[choice]["Type"] == "Choice" and machine[choice]["Default"] == wait


@pytest.mark.parametrize("config", [LOCAL, DEV], ids=lambda c: c.stage)
def test_training_and_endpoint_are_polled_in_wait_describe_choice_loops(config: StageConfig) -> None:
    _loop(config, "Wait for training", "Describe training job", "Training status?")
    _loop(config, "Wait for endpoint", "Describe endpoint", "Deployment status?")
    machine = states(config)
    assert machine["Describe training job"]["Resource"].endswith("aws-sdk:sagemaker:describeTrainingJob")
    assert machine["Describe endpoint"]["Resource"].endswith("aws-sdk:sagemaker:describeEndpoint")


def test_training_job_runs_the_tar_gz_sourcedir_on_the_regional_tf_image() -> None:
    parameters = by_action("createTrainingJob")["Parameters"]
    assert parameters["AlgorithmSpecification"]["TrainingImage"] == "<FindInMap ImagesUris/<AWS::Region>/Training>"
    hyper = parameters["HyperParameters"]
    assert hyper["sagemaker_program"] == "train.py"
    assert re.fullmatch(
        r"s3://cdk-\w+-assets-<AWS::AccountId>-<AWS::Region>/[0-9a-f]{64}\.gz", hyper["sagemaker_submit_directory"]
    )
    assert {k: hyper[k] for k in ("epochs", "batch-size", "learning-rate", "hidden-units")} == {
        "epochs": str(DEV.training.epochs),
        "batch-size": str(DEV.training.batch_size),
        "learning-rate": repr(DEV.training.learning_rate),
        "hidden-units": "128,64",
    }
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri.$"] for c in parameters["InputDataConfig"]}
    assert channels == {
        name: f"States.Format('{{}}/{name}/', $.run.curated)" for name in ("train", "validation", "test")
    }
    assert parameters["ResourceConfig"]["InstanceType"] == DEV.training.instance_type


def test_sourcedir_asset_is_a_tar_gz_with_train_py_at_its_root() -> None:
    """Acceptance: sagemaker_submit_directory is the synthesised tar.gz asset holding train.py."""
    synthesized = synthesize("dev")
    definition = state_machine_definition(synthesized.template_json("pipeline"))
    (start,) = [s for s in definition["States"].values() if s.get("Resource", "").endswith(":createTrainingJob")]
    digest = re.search(r"/([0-9a-f]{64})\.gz$", start["Parameters"]["HyperParameters"]["sagemaker_submit_directory"])
    assert digest
    (staged,) = Path(synthesized.outdir).glob(f"asset.{digest.group(1)}*")
    with tarfile.open(staged, "r:gz") as archive:
        names = set(archive.getnames())
    assert "train.py" in names
    assert {"training/metrics.py", "inference/inference.py", "mlkit/schema.py"} <= names


def test_metric_definitions_capture_every_final_metric_line() -> None:
    definitions = by_action("createTrainingJob")["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
    assert [d["Name"] for d in definitions] == list(FINAL_METRIC_NAMES)
    for definition in definitions:
        line = f"epoch 3\n{format_metric_line(definition['Name'], 0.861234)}\n"
        match = re.search(definition["Regex"], line)
        assert match and float(match.group(1)) == pytest.approx(0.861234)


def test_quality_gate_compares_final_metrics_with_the_configured_minimums() -> None:
    machine = states()
    gate = machine["Quality gate"]
    (rule,) = gate["Choices"]
    assert {(c["Variable"], c["NumericGreaterThanEquals"]) for c in rule["And"]} == {
        ("$.metrics.test_f1", 0.80),
        ("$.metrics.test_roc_auc", 0.96),
        ("$.metrics.test_accuracy", 0.985),
    }
    assert rule["Next"] == "Register model package"
    rejected = machine[gate["Default"]]
    assert rejected["Parameters"]["Error"] == "QualityGateFailed"
    assert "not registered nor deployed" in rejected["Parameters"]["Cause.$"]
    assert rejected["Next"] == "Notify failure" and machine["Notify failure"]["Next"] == "Pipeline failed"
    assert machine["Pipeline failed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    # Presence is checked before the filter: a filter matching nothing is a runtime error on LocalStack.
    assert machine["Metrics reported?"]["Choices"][0]["Next"] == "List reported metrics"
    assert machine["Enough metrics?"]["Choices"][0] == {
        "Variable": "$.reported.count",
        "NumericGreaterThanEquals": 3,
        "Next": "Check gate metrics",
    }
    assert (
        machine["Check gate metrics"]["Parameters"]["test_f1.$"] == "States.ArrayContains($.reported.names, 'test_f1')"
    )
    assert machine["Gate metrics reported?"]["Default"] == "Metrics missing"
    selected = machine["Select gate metrics"]["Parameters"]
    assert selected["test_f1.$"] == "$.training.FinalMetricDataList[?(@.MetricName == 'test_f1')]"
    assert machine["Read gate metrics"]["Parameters"]["test_f1.$"] == "$.metricFilter.test_f1[0].Value"


def test_a_rejected_model_never_reaches_registration_or_deployment() -> None:
    machine = states()
    reachable, frontier = set(), [machine["Quality gate"]["Default"]]
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        reachable.add(name)
        state = machine[name]
        frontier += [state[k] for k in ("Next", "Default") if k in state]
        frontier += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    assert reachable == {"Quality gate rejected model", "Notify failure", "Pipeline failed"}


def test_every_task_retries_transient_errors_and_notifies_before_failing() -> None:
    machine = states()
    for name, task in tasks().items():
        assert task.get("Retry"), f"{name} does not retry"
        if name == "Notify failure":
            continue
        catch_all = [c for c in task["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all and catch_all[0]["Next"] == "Notify failure", name
    fails = [n for n, s in machine.items() if s["Type"] == "Fail"]
    assert fails == ["Pipeline failed"]
    into_fail = {
        n for n, s in machine.items() if s.get("Next") == "Pipeline failed" or s.get("Default") == "Pipeline failed"
    }
    assert into_fail == {"Notify failure"}
    throttling = {e for t in tasks().values() for r in t["Retry"] for e in r["ErrorEquals"]}
    assert {"SageMaker.ThrottlingException", "Glue.ThrottlingException", "SNS.ThrottledException"} <= throttling


def test_model_is_registered_then_served_from_the_training_output() -> None:
    package = by_action("createModelPackage")["Parameters"]
    assert package["ModelPackageGroupName"] == DEV.model_package_group_name
    assert package["ModelApprovalStatus"] == "Approved"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl.$"] == "$.training.ModelArtifacts.S3ModelArtifacts"
    assert container["FrameworkVersion"] == SERVING_TENSORFLOW_VERSION
    model = by_action("createModel")["Parameters"]
    assert model["PrimaryContainer"]["Image"] == "<FindInMap ImagesUris/<AWS::Region>/Inference>"
    assert model["PrimaryContainer"]["ModelDataUrl.$"] == "$.training.ModelArtifacts.S3ModelArtifacts"


@pytest.mark.parametrize("config", [LOCAL, DEV, PROD], ids=lambda c: c.stage)
def test_endpoint_config_is_new_per_run_and_captures_data(config: StageConfig) -> None:
    parameters = by_action("createEndpointConfig", config)["Parameters"]
    assert parameters["EndpointConfigName.$"] == "$.run.name"
    capture = parameters["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == config.endpoint.capture_sampling_percent
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["KmsKeyId"] and capture["DestinationS3Uri"].startswith("s3://")
    (variant,) = parameters["ProductionVariants"]
    assert variant["InstanceType"] == config.endpoint.instance_type
    assert variant["VariantName"] == config.endpoint.variant_name


def test_endpoint_keeps_its_stable_name_create_or_blue_green_update() -> None:
    machine = states(PROD)
    find = machine["Find endpoint"]
    assert find["Parameters"] == {"EndpointName": "mlkit-prod-endpoint"}
    not_found = find["Catch"][0]
    assert "SageMaker.SageMakerException" in not_found["ErrorEquals"] and not_found["Next"] == "Endpoint missing?"
    missing = machine["Endpoint missing?"]["Choices"][0]
    assert missing["StringMatches"] == "*Could not find endpoint*" and missing["Next"] == "Create endpoint"
    assert machine["Create endpoint"]["Parameters"]["EndpointName"] == "mlkit-prod-endpoint"
    update = machine["Update endpoint"]["Parameters"]
    assert update["EndpointName"] == "mlkit-prod-endpoint"
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 600,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
    }
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"] == {
        "Alarms": [
            {"AlarmName": "mlkit-prod-endpoint-model-latency-p99"},
            {"AlarmName": "mlkit-prod-endpoint-5xx-rate"},
        ]
    }


def test_an_update_keeps_the_autoscaled_instance_count_and_nothing_else() -> None:
    update = states(PROD)["Update endpoint"]["Parameters"]
    assert update["RetainAllVariantProperties"] is True
    assert update["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DesiredWeight"},
        {"VariantPropertyType": "DataCaptureConfig"},
    ]
    assert "RetainAllVariantProperties" not in states(LOCAL)["Update endpoint"]["Parameters"]  # no autoscaling


def test_a_rolled_back_update_fails_the_execution_after_notifying() -> None:
    machine = states()
    choices = machine["Deployment status?"]["Choices"]
    serving = choices[0]
    assert {"Variable": "$.endpoint.EndpointConfigName", "StringEqualsPath": "$.run.name"} in serving["And"]
    assert choices[1] == {
        "Variable": "$.endpoint.EndpointStatus",
        "StringEquals": "InService",
        "Next": "Update rolled back",
    }
    assert machine["Update rolled back"]["Parameters"]["Error"] == "EndpointUpdateRolledBack"


def test_autoscaling_is_registered_after_deployment_when_configured() -> None:
    machine = states(DEV)
    assert machine["Deployment status?"]["Choices"][0]["Next"] == "Register scalable target"
    register = machine["Register scalable target"]
    assert register["Resource"].endswith("aws-sdk:applicationautoscaling:registerScalableTarget")
    assert register["Parameters"]["ResourceId"] == "endpoint/mlkit-dev-endpoint/variant/AllTraffic"
    assert (register["Parameters"]["MinCapacity"], register["Parameters"]["MaxCapacity"]) == (1, 2)
    policy = machine[register["Next"]]["Parameters"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PredefinedMetricSpecification"] == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    assert "Register scalable target" not in states(LOCAL)
    assert states(LOCAL)["Deployment status?"]["Choices"][0]["Next"] == "Model deployed"


def test_definition_uses_jsonpath_only() -> None:
    # LocalStack 4.13.1 evaluates JSONata through a JVM it downloads on first use: not offline.
    definition = pipeline(DEV)[1]
    assert "QueryLanguage" not in definition
    assert not any("{%" in str(s) for s in definition["States"].values())


def test_state_machine_logs_everything_and_traces() -> None:
    template = pipeline(DEV)[0]
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "mlkit-dev-pipeline",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/aws/vendedlogs/states/mlkit-dev-pipeline", "RetentionInDays": 30}
    )


def test_role_may_pass_only_the_sagemaker_roles_to_sagemaker() -> None:
    template = pipeline(DEV)[0]
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "iam:PassRole",
                                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_failure_notifications_may_use_the_topic_key() -> None:
    template = pipeline(DEV)[0]
    (key_id,) = template.find_resources("AWS::KMS::Key")
    (topic_id,) = template.find_resources("AWS::SNS::Topic")
    (machine_id,) = template.find_resources("AWS::StepFunctions::StateMachine")
    role_id = template.to_json()["Resources"][machine_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    def allowed(action: str, resource: dict[str, Any]) -> bool:
        return any(
            action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            and resource in ([s["Resource"]] if isinstance(s["Resource"], dict) else s["Resource"])
            for s in statements
        )

    assert allowed("sns:Publish", {"Ref": topic_id})
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    assert allowed("kms:GenerateDataKey*", key_arn) and allowed("kms:Decrypt", key_arn)
