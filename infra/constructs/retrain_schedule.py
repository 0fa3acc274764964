"""A schedule that starts the training pipeline (retraining on fresh raw data)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class RetrainSchedule(Construct):
    """An EventBridge rule starting the state machine on a ``cron(...)`` or ``rate(...)`` schedule.

    Attributes:
        rule: The rule.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, rule_name: str, expression: str, state_machine: sfn.IStateMachine
    ) -> None:
        """Create the schedule.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            rule_name: Physical name (carries the stage).
            expression: EventBridge schedule expression, e.g. ``cron(0 3 ? * MON *)`` (UTC).
            state_machine: The pipeline; started with an empty input (the configured raw key).
        """
        super().__init__(scope, construct_id)
        if not expression.startswith(("cron(", "rate(")):
            raise ValueError(f"{construct_id}: schedule {expression!r} must be cron(...) or rate(...)")
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name,
            description="Retrain and redeploy on schedule",
            schedule=events.Schedule.expression(expression),
            targets=[targets.SfnStateMachine(state_machine, input=events.RuleTargetInput.from_object({}))],
        )
