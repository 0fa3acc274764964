"""The single failure route: every failing path notifies the alerts topic, then fails the execution."""

from __future__ import annotations

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.pipeline.retries import SNS_TRANSIENT, retry_transient

#: Where a failing path leaves ``{"Error": ..., "Cause": ...}`` for the notification and the Fail state.
ERROR_PATH = "$.error"


class FailureRoute:
    """``Notify failure`` (SNS) -> ``Pipeline failed`` (Fail with the recorded error and cause).

    Attributes:
        notify: The SNS publish state every failing path goes to.
        failed: The terminal Fail state.
    """

    def __init__(self, scope: Construct, *, topic: sns.ITopic, pipeline_name: str) -> None:
        """Create the route.

        Args:
            scope: Construct that owns the states.
            topic: The alerts topic.
            pipeline_name: Named in the notification.
        """
        self.failed = sfn.Fail(
            scope, "Pipeline failed", error_path=f"{ERROR_PATH}.Error", cause_path=f"{ERROR_PATH}.Cause"
        )
        self.notify = tasks.SnsPublish(
            scope,
            "Notify failure",
            topic=topic,
            subject=f"{pipeline_name} failed"[:100],
            message=sfn.TaskInput.from_json_path_at(
                sfn.JsonPath.format(
                    "Pipeline {} execution {} failed. Error: {}. Cause: {}",
                    pipeline_name,
                    sfn.JsonPath.string_at("$$.Execution.Name"),
                    sfn.JsonPath.string_at(f"{ERROR_PATH}.Error"),
                    sfn.JsonPath.string_at(f"{ERROR_PATH}.Cause"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        retry_transient(self.notify, SNS_TRANSIENT)
        # A notification that cannot be sent must not hide the original failure.
        self.notify.add_catch(self.failed, result_path="$.notificationError")
        self.notify.next(self.failed)

    def catch(self, task: sfn.TaskStateBase) -> None:
        """Send any error of ``task`` (after its retries) down the failure route."""
        task.add_catch(self.notify, errors=[sfn.Errors.ALL], result_path=ERROR_PATH)

    def reject(self, scope: Construct, state_name: str, *, error: str, cause: str) -> sfn.Pass:
        """Return a Pass state that records a failure found by the pipeline itself, then notifies.

        Args:
            scope: Construct that owns the state.
            state_name: Name of the state.
            error: Error name (``QualityGateFailed``...).
            cause: Human-readable cause; may be a JSONPath expression such as ``JsonPath.format(...)``.
        """
        record = sfn.Pass(scope, state_name, parameters={"Error": error, "Cause": cause}, result_path=ERROR_PATH)
        record.next(self.notify)
        return record
