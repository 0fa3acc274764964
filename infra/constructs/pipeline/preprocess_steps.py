"""Start of the pipeline: name the run, choose the input, run the Glue preprocessing job.

State data after these steps::

    $.input  the raw CSV (s3 URI): the execution input's ``input``, or the configured default
    $.run    {"id": <uuid>, "name": "<prefix>-<uuid>", "curated": "s3://<curated>/runs/<uuid>"}
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.constructs.pipeline.resources import StepContext
from infra.constructs.pipeline.retries import GLUE_TRANSIENT, retry_transient

#: Curated prefix under which each run writes (``runs/<run id>/train/`` ...).
RUNS_PREFIX = "runs"


def preprocess_steps(ctx: StepContext, next_state: sfn.IChainable) -> sfn.State:
    """Return the first state of the pipeline; the preprocessing job's success leads to ``next_state``.

    Args:
        ctx: Step context.
        next_state: First state of training.
    """
    res = ctx.resources
    start = sfn.Pass(
        ctx.scope,
        "Start run",
        comment="One id names every resource of this run (training job, model, endpoint config).",
        # The bucket name travels as data: CloudFormation tokens do not belong inside intrinsic literals.
        parameters={"id": sfn.JsonPath.uuid(), "curatedBucket": res.curated.bucket_name},
        result_path="$.run",
    )
    plan = sfn.Pass(
        ctx.scope,
        "Plan run",
        parameters={
            "id": sfn.JsonPath.string_at("$.run.id"),
            "name": sfn.JsonPath.format(f"{ctx.config.prefix}-{{}}", sfn.JsonPath.string_at("$.run.id")),
            "curated": sfn.JsonPath.format(
                f"s3://{{}}/{RUNS_PREFIX}/{{}}",
                sfn.JsonPath.string_at("$.run.curatedBucket"),
                sfn.JsonPath.string_at("$.run.id"),
            ),
        },
        result_path="$.run",
    )
    default_input = sfn.Pass(
        ctx.scope,
        "Use default input",
        result=sfn.Result.from_string(res.raw.s3_url_for_object(ctx.config.raw_input_key)),
        result_path="$.input",
    )
    preprocess = tasks.GlueStartJobRun(
        ctx.scope,
        "Preprocess data",
        comment="Validate, deduplicate and split the raw CSV into this run's curated prefix (Glue, Beam).",
        glue_job_name=res.glue_job_name,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,
        arguments=sfn.TaskInput.from_object(
            {
                "--input": sfn.JsonPath.string_at("$.input"),
                "--output": sfn.JsonPath.format("{}/", sfn.JsonPath.string_at("$.run.curated")),
            }
        ),
        result_path=sfn.JsonPath.DISCARD,
    )
    retry_transient(preprocess, GLUE_TRANSIENT, attempts=5)
    ctx.failure.catch(preprocess)
    preprocess.next(next_state)

    input_given = (
        sfn.Choice(ctx.scope, "Input given?")
        .when(sfn.Condition.is_present("$.input"), preprocess)
        .otherwise(default_input.next(preprocess))
    )
    start.next(plan).next(input_given)
    return start
