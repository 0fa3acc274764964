"""Create or update the endpoint under its stable name, wait until it serves, then set up autoscaling.

The endpoint is looked up first: missing -> CreateEndpoint; InService -> UpdateEndpoint with a
blue/green deployment that the endpoint alarms roll back; Failed (a first deployment that never
served) -> delete it and create it again; busy (Creating, Updating, ...) -> wait and look again.
After the call the endpoint is polled until it settles. An update that settles on any config other
than this run's was rolled back: the old model keeps serving and the execution fails.

State data::

    $.endpoint  the last DescribeEndpoint response
    $.error     on a failed lookup: {"Error", "Cause"} (a missing endpoint is not a failure)
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.config import AutoscalingSettings
from infra.constructs.pipeline.failure import ERROR_PATH
from infra.constructs.pipeline.resources import StepContext
from infra.constructs.pipeline.retries import AUTOSCALING_TRANSIENT, SAGEMAKER_THROTTLING, retry_transient

#: DescribeEndpoint of a missing endpoint: SageMaker answers ValidationException "Could not find endpoint ...".
NOT_FOUND_ERRORS = (
    "SageMaker.ResourceNotFoundException",
    "SageMaker.ValidationException",
    "SageMaker.SageMakerException",
    "SageMaker.AmazonSageMakerException",
)
NOT_FOUND_CAUSE = "*Could not find endpoint*"
_STATUS = "$.endpoint.EndpointStatus"
_AUTOSCALING_REASON = (
    "Application Auto Scaling actions take no resource ARN before registration (scalable-target ARNs embed a "
    "generated id); the SageMaker and CloudWatch calls the registration makes are scoped separately."
)
#: Statuses that end a deployment wait; any other (Creating, Updating, RollingBack...) keeps polling.
SETTLED_STATUSES = ("InService", "Failed", "UpdateRollbackFailed", "OutOfService")


def deploy_steps(ctx: StepContext) -> sfn.State:
    """Return the endpoint lookup state; the pipeline succeeds once the new model serves."""
    config = ctx.config
    endpoint_arn = ctx.sagemaker_arn("endpoint", config.endpoint_name)
    deployed = sfn.Succeed(ctx.scope, "Model deployed")
    after_in_service: sfn.IChainable = deployed
    if config.autoscaling is not None:
        after_in_service = _autoscaling(ctx, config.autoscaling, deployed)

    wait_deploy = ctx.wait("Wait for endpoint")
    describe = ctx.sagemaker(
        "Describe endpoint",
        "describeEndpoint",
        parameters={"EndpointName": config.endpoint_name},
        resources=[endpoint_arn],
        result_path="$.endpoint",
    )
    wait_deploy.next(describe).next(_deployment_status(ctx, after_in_service, wait_deploy))

    create = ctx.sagemaker(
        "Create endpoint",
        "createEndpoint",
        parameters={"EndpointName": config.endpoint_name, "EndpointConfigName": sfn.JsonPath.string_at("$.run.name")},
        resources=[endpoint_arn, ctx.run_arn("endpoint-config")],
    )
    update = _update_endpoint(ctx, endpoint_arn)
    create.next(wait_deploy)
    update.next(wait_deploy)

    find = ctx.sagemaker(
        "Find endpoint",
        "describeEndpoint",
        parameters={"EndpointName": config.endpoint_name},
        resources=[endpoint_arn],
        result_path="$.endpoint",
        retry_errors=SAGEMAKER_THROTTLING,
        catch=False,
    )
    missing = (
        sfn.Choice(ctx.scope, "Endpoint missing?")
        .when(sfn.Condition.string_matches(f"{ERROR_PATH}.Cause", NOT_FOUND_CAUSE), create)
        .otherwise(ctx.failure.notify)
    )
    find.add_catch(missing, errors=list(NOT_FOUND_ERRORS), result_path=ERROR_PATH)
    ctx.failure.catch(find)

    settle = ctx.wait("Wait for endpoint to settle")
    delete_failed = ctx.sagemaker(
        "Delete failed endpoint",
        "deleteEndpoint",
        parameters={"EndpointName": config.endpoint_name},
        resources=[endpoint_arn],
    )
    delete_failed.next(settle)
    settle.next(find)
    find.next(
        sfn.Choice(ctx.scope, "Endpoint state?")
        .when(sfn.Condition.string_equals(_STATUS, "InService"), update)
        .when(sfn.Condition.string_equals(_STATUS, "Failed"), delete_failed)
        .otherwise(settle)
    )
    return find


def _update_endpoint(ctx: StepContext, endpoint_arn: str) -> tasks.CallAwsService:
    deployment = ctx.config.endpoint.deployment
    routing: dict[str, object] = {
        "Type": deployment.traffic_routing,
        "WaitIntervalInSeconds": deployment.wait_interval_seconds,
    }
    step = {"Type": "CAPACITY_PERCENT", "Value": deployment.step_percent}
    if deployment.traffic_routing == "CANARY":
        routing["CanarySize"] = step
    elif deployment.traffic_routing == "LINEAR":
        routing["LinearStepSize"] = step
    alarm_arns = [
        Stack.of(ctx.scope).format_arn(
            service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        for name in ctx.resources.rollback_alarm_names
    ]
    parameters: dict[str, object] = {
        "EndpointName": ctx.config.endpoint_name,
        "EndpointConfigName": sfn.JsonPath.string_at("$.run.name"),
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": deployment.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": deployment.max_execution_timeout_seconds,
            },
            "AutoRollbackConfiguration": {
                "Alarms": [{"AlarmName": name} for name in ctx.resources.rollback_alarm_names]
            },
        },
    }
    if ctx.config.autoscaling is not None:
        # The autoscaler owns the instance count: a new fleet at the config's initial count would shrink
        # an endpoint scaled out under load. Everything else (weights, data capture) comes from the new config.
        parameters["RetainAllVariantProperties"] = True
        parameters["ExcludeRetainedVariantProperties"] = [
            {"VariantPropertyType": "DesiredWeight"},
            {"VariantPropertyType": "DataCaptureConfig"},
        ]
    return ctx.sagemaker(
        "Update endpoint",
        "updateEndpoint",
        parameters=parameters,
        resources=[endpoint_arn, ctx.run_arn("endpoint-config")],
        extra_statements=[iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=alarm_arns)],
    )


def _deployment_status(ctx: StepContext, in_service: sfn.IChainable, keep_waiting: sfn.IChainable) -> sfn.Choice:
    serving_this_run = sfn.Condition.and_(
        sfn.Condition.string_equals(_STATUS, "InService"),
        sfn.Condition.string_equals_json_path("$.endpoint.EndpointConfigName", "$.run.name"),
    )
    name = sfn.JsonPath.string_at("$.endpoint.EndpointName")
    rolled_back = ctx.failure.reject(
        ctx.scope,
        "Update rolled back",
        error="EndpointUpdateRolledBack",
        cause=sfn.JsonPath.format(
            "Endpoint {} rolled back to {}: a rollback alarm fired during the blue/green deployment",
            name,
            sfn.JsonPath.string_at("$.endpoint.EndpointConfigName"),
        ),
    )
    failed = ctx.failure.reject(
        ctx.scope,
        "Endpoint failed",
        error="EndpointFailed",
        cause=sfn.JsonPath.format(
            "Endpoint {} is {}: {}",
            name,
            sfn.JsonPath.string_at(_STATUS),
            sfn.JsonPath.string_at("$.endpoint.FailureReason"),
        ),
    )
    unknown_failure = ctx.failure.reject(
        ctx.scope,
        "Endpoint unavailable",
        error="EndpointUnavailable",
        cause=sfn.JsonPath.format("Endpoint {} is {}", name, sfn.JsonPath.string_at(_STATUS)),
    )
    return (
        sfn.Choice(ctx.scope, "Deployment status?")
        .when(serving_this_run, in_service)
        .when(sfn.Condition.string_equals(_STATUS, "InService"), rolled_back)
        .when(
            sfn.Condition.and_(
                sfn.Condition.or_(
                    sfn.Condition.string_equals(_STATUS, "Failed"),
                    sfn.Condition.string_equals(_STATUS, "UpdateRollbackFailed"),
                ),
                sfn.Condition.is_present("$.endpoint.FailureReason"),
            ),
            failed,
        )
        .when(
            sfn.Condition.or_(*(sfn.Condition.string_equals(_STATUS, s) for s in SETTLED_STATUSES)),
            unknown_failure,
        )
        .otherwise(keep_waiting)
    )


def _autoscaling(ctx: StepContext, settings: AutoscalingSettings, next_state: sfn.IChainable) -> sfn.State:
    """Target tracking on invocations per instance, registered once the endpoint exists.

    The endpoint is created by this state machine, not by CloudFormation, so a stack-level
    ScalableTarget would point at nothing on the first deployment; registering here is idempotent
    and re-applies the configured bounds after every deployment.
    """
    config = ctx.config
    resource_id = f"endpoint/{config.endpoint_name}/variant/{config.endpoint.variant_name}"
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    stack = Stack.of(ctx.scope)
    endpoint_arn = ctx.sagemaker_arn("endpoint", config.endpoint_name)
    register = tasks.CallAwsService(
        ctx.scope,
        "Register scalable target",
        service="applicationautoscaling",
        action="registerScalableTarget",
        iam_action="application-autoscaling:RegisterScalableTarget",
        # Application Auto Scaling ARNs embed a generated id unknown before registration, so its
        # actions cannot name a resource; the SageMaker and CloudWatch calls it makes are scoped below.
        iam_resources=[ctx.allow_wildcard("*", _AUTOSCALING_REASON)],
        parameters={**target, "MinCapacity": settings.min_capacity, "MaxCapacity": settings.max_capacity},
        result_path=sfn.JsonPath.DISCARD,
        additional_iam_statements=[
            iam.PolicyStatement(
                actions=["application-autoscaling:DescribeScalableTargets"],
                resources=["*"],  # Describe* of Application Auto Scaling supports no resource ARN
            ),
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                ],
                resources=[endpoint_arn, ctx.run_arn("endpoint-config")],
            ),
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                    )
                ],
                conditions={"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            ),
        ],
    )
    policy = tasks.CallAwsService(
        ctx.scope,
        "Put scaling policy",
        service="applicationautoscaling",
        action="putScalingPolicy",
        iam_action="application-autoscaling:PutScalingPolicy",
        iam_resources=["*"],  # see "Register scalable target"
        parameters={
            **target,
            "PolicyName": config.name("invocations-per-instance"),
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": settings.invocations_per_instance,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": settings.scale_in_cooldown_seconds,
                "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
            },
        },
        result_path=sfn.JsonPath.DISCARD,
        additional_iam_statements=[
            iam.PolicyStatement(
                # Target tracking creates and manages its own alarms, named after the resource id.
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
                resources=[
                    ctx.allow_wildcard(
                        stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=f"TargetTracking-{resource_id}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        ),
                        "Target tracking names its alarms TargetTracking-<resource id>-<generated suffix>.",
                    )
                ],
            )
        ],
    )
    for task in (register, policy):
        retry_transient(task, AUTOSCALING_TRANSIENT)
        ctx.failure.catch(task)
    register.next(policy).next(next_state)
    return register
