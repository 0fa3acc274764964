"""Train, wait for the job by polling, read its final metrics and apply the quality gate.

State data after these steps::

    $.training      the last DescribeTrainingJob response (ModelArtifacts, FinalMetricDataList, ...)
    $.reported      {"count": n, "names": [...], "gate": {<metric>: true|false}}: what the job reported
    $.metricFilter  {<metric>: [{"MetricName", "Value", "Timestamp"}]} for each gate metric
    $.metrics       {<metric>: <value>} for each gate metric

Metrics are selected with a JSONPath filter that yields a *list* of entries both on AWS and on
LocalStack (whose interpreter unwraps single values, but not filter results), then read at ``[0]``.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.constructs.pipeline.resources import StepContext
from mlkit.packaging import SOURCEDIR_PROGRAM

#: Channels the Glue job writes and ``train.py`` reads, as ``<curated run prefix>/<channel>/``.
CHANNELS = ("train", "validation", "test")


def training_steps(ctx: StepContext, next_state: sfn.IChainable, *, training_output_prefix: str) -> sfn.State:
    """Return the first training state; a model that passes the gate leads to ``next_state``.

    Args:
        ctx: Step context.
        next_state: First state of registration and deployment.
        training_output_prefix: Prefix of the artifacts bucket for training output.
    """
    start = _start_training(ctx, training_output_prefix)
    wait = ctx.wait("Wait for training")
    describe = ctx.sagemaker(
        "Describe training job",
        "describeTrainingJob",
        parameters={"TrainingJobName": sfn.JsonPath.string_at("$.run.name")},
        resources=[ctx.run_arn("training-job")],
        result_path="$.training",
    )
    gate = _quality_gate(ctx, next_state)
    status = (
        sfn.Choice(ctx.scope, "Training status?")
        .when(sfn.Condition.string_equals("$.training.TrainingJobStatus", "Completed"), _read_metrics(ctx, gate))
        .when(
            sfn.Condition.string_equals("$.training.TrainingJobStatus", "Failed"),
            ctx.failure.reject(
                ctx.scope,
                "Training failed",
                error="TrainingJobFailed",
                cause=sfn.JsonPath.format(
                    "Training job {} failed: {}",
                    sfn.JsonPath.string_at("$.run.name"),
                    sfn.JsonPath.string_at("$.training.FailureReason"),
                ),
            ),
        )
        .when(
            sfn.Condition.string_equals("$.training.TrainingJobStatus", "Stopped"),
            ctx.failure.reject(
                ctx.scope,
                "Training stopped",
                error="TrainingJobStopped",
                cause=sfn.JsonPath.format("Training job {} was stopped", sfn.JsonPath.string_at("$.run.name")),
            ),
        )
        .otherwise(wait)
    )
    start.next(wait).next(describe).next(status)
    return start


def _start_training(ctx: StepContext, output_prefix: str) -> tasks.CallAwsService:
    res, settings = ctx.resources, ctx.config.training
    channels = [
        {
            "ChannelName": channel,
            "ContentType": "text/csv",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": sfn.JsonPath.format(f"{{}}/{channel}/", sfn.JsonPath.string_at("$.run.curated")),
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        for channel in CHANNELS
    ]
    resource_config: dict[str, object] = {
        "InstanceType": settings.instance_type,
        "InstanceCount": settings.instance_count,
        "VolumeSizeInGB": settings.volume_size_gb,
    }
    if settings.encrypt_volume:
        resource_config["VolumeKmsKeyId"] = res.encryption_key.key_arn
    return ctx.sagemaker(
        "Start training job",
        "createTrainingJob",
        parameters={
            "TrainingJobName": sfn.JsonPath.string_at("$.run.name"),
            "RoleArn": res.training_role.role_arn,
            "AlgorithmSpecification": {
                "TrainingImage": res.images.training_image,
                "TrainingInputMode": "File",
                "MetricDefinitions": [dict(m) for m in res.metric_definitions],
            },
            "HyperParameters": {
                **settings.hyperparameters(),
                # Script mode: the TF container downloads this tar.gz and runs the program in it.
                "sagemaker_program": SOURCEDIR_PROGRAM,
                "sagemaker_submit_directory": res.sourcedir.s3_object_url,
                "sagemaker_region": Aws.REGION,
                "sagemaker_container_log_level": "20",
            },
            "InputDataConfig": channels,
            "OutputDataConfig": {
                "S3OutputPath": res.artifacts.s3_url_for_object(output_prefix.rstrip("/")),
                "KmsKeyId": res.encryption_key.key_arn,
            },
            "ResourceConfig": resource_config,
            "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_minutes * 60},
            "Environment": {"TF_CPP_MIN_LOG_LEVEL": "2"},
        },
        resources=[ctx.run_arn("training-job")],
        extra_statements=[ctx.pass_role(res.training_role)],
    )


def _read_metrics(ctx: StepContext, gate: sfn.IChainable) -> sfn.State:
    """Check that every gate metric was reported, then read their values.

    The checks come before the JSONPath filter because a filter that matches nothing yields ``[]``
    on AWS but is a runtime error (uncatchable, so no notification) on LocalStack. Names are listed
    only when at least as many metrics as the gate needs exist: LocalStack unwraps a one-element
    ``[*]`` result into a scalar, which ``States.ArrayContains`` would reject.
    """
    names = list(ctx.config.gate_metrics)
    missing = ctx.failure.reject(
        ctx.scope,
        "Metrics missing",
        error="MetricsMissing",
        cause=sfn.JsonPath.format(
            "Training job {} reported no value for at least one of "
            + ", ".join(names)
            + " (train.py prints them as METRIC <name>=<value>)",
            sfn.JsonPath.string_at("$.run.name"),
        ),
    )
    count = sfn.Pass(
        ctx.scope,
        "List reported metrics",
        parameters={
            "count": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.training.FinalMetricDataList")),
            "names": sfn.JsonPath.list_at("$.training.FinalMetricDataList[*].MetricName"),
        },
        result_path="$.reported",
    )
    check = sfn.Pass(
        ctx.scope,
        "Check gate metrics",
        parameters={
            name: sfn.JsonPath.array_contains(sfn.JsonPath.list_at("$.reported.names"), name) for name in names
        },
        result_path="$.reported.gate",
    )
    select = sfn.Pass(
        ctx.scope,
        "Select gate metrics",
        parameters={
            name: sfn.JsonPath.list_at(f"$.training.FinalMetricDataList[?(@.MetricName == '{name}')]") for name in names
        },
        result_path="$.metricFilter",
    )
    read = sfn.Pass(
        ctx.scope,
        "Read gate metrics",
        parameters={name: sfn.JsonPath.number_at(f"$.metricFilter.{name}[0].Value") for name in names},
        result_path="$.metrics",
    )
    all_reported = sfn.Condition.and_(*(sfn.Condition.boolean_equals(f"$.reported.gate.{n}", True) for n in names))
    check.next(
        sfn.Choice(ctx.scope, "Gate metrics reported?")
        .when(all_reported, select.next(read).next(gate))
        .otherwise(missing)
    )
    count.next(
        sfn.Choice(ctx.scope, "Enough metrics?")
        .when(sfn.Condition.number_greater_than_equals("$.reported.count", len(names)), check)
        .otherwise(missing)
    )
    return (
        sfn.Choice(ctx.scope, "Metrics reported?")
        .when(sfn.Condition.is_present("$.training.FinalMetricDataList"), count)
        .otherwise(missing)
    )


def _quality_gate(ctx: StepContext, next_state: sfn.IChainable) -> sfn.State:
    minimums = ctx.config.gate_metrics
    passes = sfn.Condition.and_(
        *(sfn.Condition.number_greater_than_equals(f"$.metrics.{n}", m) for n, m in minimums.items())
    )
    summary = ", ".join(f"{name}={{}} (minimum {minimum:g})" for name, minimum in minimums.items())
    rejected = ctx.failure.reject(
        ctx.scope,
        "Quality gate rejected model",
        error="QualityGateFailed",
        cause=sfn.JsonPath.format(
            f"Model of {{}} is below the quality gate, not registered nor deployed: {summary}",
            sfn.JsonPath.string_at("$.run.name"),
            *(sfn.JsonPath.string_at(f"$.metrics.{name}") for name in minimums),
        ),
    )
    return (
        sfn.Choice(ctx.scope, "Quality gate", comment="Minimum test metrics from the stage configuration.")
        .when(passes, next_state)
        .otherwise(rejected)
    )
