"""Alarms on the batch side: a failed Glue job run and a failed pipeline execution."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.metrics import pipeline_metric, rule_matches

#: Glue job run states that mean the run did not produce its output.
GLUE_FAILED_STATES = ("FAILED", "TIMEOUT", "ERROR")
_PERIOD = Duration.minutes(5)


class WorkflowAlarms(Construct):
    """Alarm when the preprocessing job or the pipeline fails, notifying the alerts topic.

    Glue publishes job-run outcomes as ``Glue Job State Change`` events rather than as metrics, so
    EventBridge rules count them (``AWS/Events`` ``TriggeredRules``); the rules need no target.
    The state machine is referred to by name, so this can deploy before the pipeline stack.

    Attributes:
        glue_failed_rule: Matches failed runs of the job.
        glue_succeeded_rule: Matches successful runs (for the dashboard).
        glue_failure: Alarm on any failed run.
        pipeline_failure: Alarm on any failed or timed-out execution.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        glue_job_name: str,
        state_machine_name: str,
        rule_names: dict[str, str],
        alarm_names: dict[str, str],
        topic: sns.ITopic,
    ) -> None:
        """Create the rules and alarms.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            glue_job_name: Name of the preprocessing job.
            state_machine_name: Name of the pipeline state machine.
            rule_names: Physical names keyed ``glue_failed`` and ``glue_succeeded``.
            alarm_names: Physical names keyed ``glue`` and ``pipeline``.
            topic: Where the alarms notify.
        """
        super().__init__(scope, construct_id)

        def glue_rule(construct_id: str, name: str, states: list[str]) -> events.Rule:
            return events.Rule(
                self,
                construct_id,
                rule_name=name,
                description=f"{glue_job_name} runs ending {', '.join(states)}",
                event_pattern=events.EventPattern(
                    source=["aws.glue"],
                    detail_type=["Glue Job State Change"],
                    detail={"jobName": [glue_job_name], "state": states},
                ),
            )

        self.glue_failed_rule = glue_rule("GlueFailedRuns", rule_names["glue_failed"], list(GLUE_FAILED_STATES))
        self.glue_succeeded_rule = glue_rule("GlueSucceededRuns", rule_names["glue_succeeded"], ["SUCCEEDED"])

        def alarm(construct_id: str, name: str, metric: cw.IMetric, what: str) -> cw.Alarm:
            created = cw.Alarm(
                self,
                construct_id,
                alarm_name=name,
                alarm_description=what,
                metric=metric,
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(cw_actions.SnsAction(topic))
            return created

        self.glue_failure = alarm(
            "GlueJobFailed",
            alarm_names["glue"],
            rule_matches(rule_names["glue_failed"], _PERIOD),
            f"Glue job {glue_job_name} run failed, timed out or errored",
        )
        failed = pipeline_metric(self, state_machine_name, "ExecutionsFailed", _PERIOD)
        timed_out = pipeline_metric(self, state_machine_name, "ExecutionsTimedOut", _PERIOD)
        self.pipeline_failure = alarm(
            "PipelineFailed",
            alarm_names["pipeline"],
            cw.MathExpression(
                expression="FILL(failed, 0) + FILL(timedOut, 0)",
                using_metrics={"failed": failed, "timedOut": timed_out},
                label="failed or timed-out executions",
                period=_PERIOD,
            ),
            f"pipeline {state_machine_name} execution failed or timed out",
        )
