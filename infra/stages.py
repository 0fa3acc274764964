"""The stages of the kit and how they differ. Pick one with ``cdk synth -c stage=<name>``.

* ``local``: LocalStack on a laptop (``make demo``). Fast polling, short retention, full capture, no
  autoscaling (see below), deletable data.
* ``dev``: a real AWS account for development. Small instances, deletable data.
* ``prod``: production. Two instances behind a canary deployment, autoscaling, data retained,
  weekly retraining.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from infra.config import (
    AlarmSettings,
    AutoscalingSettings,
    ConfigError,
    DeploymentSettings,
    EndpointSettings,
    RetentionSettings,
    StageConfig,
    TrainingSettings,
)

LOCAL: Final = StageConfig(
    stage="local",
    retain_data=False,
    poll_seconds=5,
    training=TrainingSettings(instance_type="ml.m5.large"),
    endpoint=EndpointSettings(
        capture_sampling_percent=100,
        deployment=DeploymentSettings(
            wait_interval_seconds=0, termination_wait_seconds=0, max_execution_timeout_seconds=600
        ),
    ),
    # LocalStack community has no Application Auto Scaling, and its Step Functions cannot reach the
    # service by its SDK-integration name ("applicationautoscaling"); a fixed single instance instead.
    autoscaling=None,
    # One breaching minute is enough to see the alarm fire in the demo.
    alarms=AlarmSettings(evaluation_periods=1, datapoints_to_alarm=1),
    retention=RetentionSettings(
        log_days=7, curated_days=7, capture_days=7, access_log_days=7, glue_temp_days=1, noncurrent_artifact_days=7
    ),
)

DEV: Final = StageConfig(
    stage="dev",
    retain_data=False,
    training=TrainingSettings(instance_type="ml.m5.xlarge"),
    endpoint=EndpointSettings(
        instance_type="ml.m5.large",
        capture_sampling_percent=100,
        deployment=DeploymentSettings(wait_interval_seconds=120, termination_wait_seconds=60),
    ),
    autoscaling=AutoscalingSettings(min_capacity=1, max_capacity=2),
    retention=RetentionSettings(log_days=30, curated_days=14, capture_days=30, access_log_days=30),
)

PROD: Final = StageConfig(
    stage="prod",
    retain_data=True,
    retrain_schedule="cron(0 3 ? * MON *)",
    training=TrainingSettings(instance_type="ml.m5.xlarge", max_runtime_minutes=120),
    endpoint=EndpointSettings(
        instance_type="ml.m5.xlarge",
        initial_instance_count=2,
        capture_sampling_percent=20,
        deployment=DeploymentSettings(
            traffic_routing="CANARY",
            step_percent=50,
            wait_interval_seconds=600,
            termination_wait_seconds=600,
            max_execution_timeout_seconds=7200,
        ),
    ),
    autoscaling=AutoscalingSettings(min_capacity=2, max_capacity=6, invocations_per_instance=2000.0),
    alarms=AlarmSettings(model_latency_p99_us=50_000, max_5xx_rate_percent=0.5, max_4xx_rate_percent=2.0),
    retention=RetentionSettings(
        log_days=365, curated_days=90, capture_days=365, access_log_days=365, noncurrent_artifact_days=90
    ),
)

STAGES: Final[Mapping[str, StageConfig]] = MappingProxyType({c.stage: c for c in (LOCAL, DEV, PROD)})


def get_stage(name: str | None, *, alarm_email: str | None = None) -> StageConfig:
    """Return a stage's configuration, optionally with an alarm e-mail given at synth time.

    Args:
        name: Stage name (``-c stage=<name>``).
        alarm_email: Overrides the stage's ``alarm_email`` (``-c alarm_email=<address>``).

    Raises:
        ConfigError: If the stage is unknown or the override is invalid.
    """
    if not name:
        raise ConfigError(f"no stage given: pass -c stage=<name>, one of {', '.join(STAGES)}")
    try:
        config = STAGES[name]
    except KeyError:
        raise ConfigError(f"unknown stage {name!r}: expected one of {', '.join(STAGES)}") from None
    if alarm_email:
        config = dataclasses.replace(config, alarm_email=alarm_email)  # re-validates
    return config
