"""CDK entry point of mlops-kit: ``npx cdk synth -c stage=<local|dev|prod>``.

``cdk.json`` runs this as ``python -m infra.app`` from the project root. (Run as a script, its folder
would come first on ``sys.path`` and ``infra/constructs`` would shadow the ``constructs`` library.)
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Tags

from infra.assets import AssetBuildError
from infra.config import ConfigError, StageConfig
from infra.images import ImageLookupError
from infra.nag import add_checks
from infra.pins import PinError
from infra.stacks.data_stack import DataStack
from infra.stacks.monitoring_stack import MonitoringStack, rollback_alarm_names
from infra.stacks.pipeline_stack import PipelineStack
from infra.stacks.preprocessing_stack import PreprocessingStack
from infra.stages import get_stage


@dataclass(frozen=True)
class StageStacks:
    """The stacks of one stage, in deployment order."""

    data: DataStack
    monitoring: MonitoringStack
    preprocessing: PreprocessingStack
    pipeline: PipelineStack


def add_stage(app: App, config: StageConfig) -> StageStacks:
    """Add the stacks of ``config``'s stage to ``app``.

    Args:
        app: The CDK app.
        config: The stage configuration.

    Returns:
        The four stacks.
    """
    env = Environment(account=config.account, region=config.region) if config.account or config.region else None
    Tags.of(app).add("project", "mlops-kit")
    Tags.of(app).add("stage", config.stage)

    def stack_props(unit: str, what: str) -> dict[str, object]:
        return {"stack_name": config.stack_name(unit), "env": env, "description": f"mlops-kit {config.stage}: {what}"}

    data = DataStack(app, "Data", config=config, **stack_props("data", "KMS key and S3 buckets"))
    monitoring = MonitoringStack(
        app,
        "Monitoring",
        config=config,
        key=data.key,
        **stack_props("monitoring", "alerts topic, alarms and dashboard"),
    )
    preprocessing = PreprocessingStack(
        app, "Preprocessing", config=config, data=data, **stack_props("preprocessing", "Glue preprocessing job")
    )
    pipeline = PipelineStack(
        app,
        "Pipeline",
        config=config,
        data=data,
        glue_job_name=preprocessing.job.job_name,
        topic=monitoring.topic,
        rollback_alarm_names=rollback_alarm_names(config),
        **stack_props("pipeline", "training and deployment state machine"),
    )
    # The pipeline refers to the job, and rolls back on the alarms, by name only: order them explicitly.
    pipeline.add_stack_dependency(preprocessing)
    pipeline.add_stack_dependency(monitoring)
    return StageStacks(data=data, monitoring=monitoring, preprocessing=preprocessing, pipeline=pipeline)


def build_app(app: App) -> StageStacks:
    """Add the stage chosen with ``-c stage=<name>`` (and ``-c alarm_email=...``) and the nag checks."""
    config = get_stage(app.node.try_get_context("stage"), alarm_email=app.node.try_get_context("alarm_email"))
    stacks = add_stage(app, config)
    add_checks(app)
    return stacks


def main() -> None:
    """Synthesise the app (called by the CDK CLI); a configuration or packaging problem is one line."""
    app = App()
    try:
        build_app(app)
    except (ConfigError, AssetBuildError, ImageLookupError, PinError) as error:
        raise SystemExit(f"error: {error}") from None
    app.synth()


if __name__ == "__main__":
    main()
