"""Stage configuration: valid stages, clear errors for bad values, one source for versions and pins."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest
from infra_helpers import PROJECT_ROOT

from infra.config import (
    GLUE_PYTHON_MODULES,
    TENSORFLOW_VERSION,
    AlarmSettings,
    AutoscalingSettings,
    ConfigError,
    DeploymentSettings,
    EndpointSettings,
    RetentionSettings,
    StageConfig,
    TrainingSettings,
)
from infra.pins import PinError, glue_python_modules, locked_versions, pinned
from infra.stages import DEV, LOCAL, PROD, STAGES, get_stage
from mlkit.quality_gate import QualityGate

pytestmark = pytest.mark.unit

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _pyproject_pin(name: str) -> str:
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = re.fullmatch(rf"{re.escape(name)}(\[[^\]]+\])?==(\S+)", requirement)
        if match:
            return match.group(2)
    raise AssertionError(f"{name} has no exact pin in pyproject.toml")


def test_the_three_stages_exist_and_differ_only_by_configuration() -> None:
    assert set(STAGES) == {"local", "dev", "prod"}
    assert PROD.retain_data and not DEV.retain_data and not LOCAL.retain_data
    assert PROD.endpoint.initial_instance_count >= 2
    assert LOCAL.autoscaling is None  # LocalStack community has no Application Auto Scaling
    assert DEV.autoscaling is not None and PROD.autoscaling is not None


@pytest.mark.parametrize("config", [LOCAL, DEV, PROD], ids=lambda c: c.stage)
def test_every_physical_name_carries_the_stage(config: StageConfig) -> None:
    names = [
        config.endpoint_name,
        config.glue_job_name,
        config.state_machine_name,
        config.model_package_group_name,
        config.stack_name("data"),
        config.alarm_name("endpoint-5xx-rate"),
    ]
    assert all(f"-{config.stage}-" in name or name.endswith(f"-{config.stage}") for name in names), names
    assert len({n for c in STAGES.values() for n in (c.endpoint_name, c.state_machine_name)}) == 2 * len(STAGES)


def test_tensorflow_version_is_kept_in_one_place_matching_the_pinned_tensorflow() -> None:
    pinned_version = _pyproject_pin("tensorflow")
    assert pinned_version.split(".")[:2] == TENSORFLOW_VERSION.split(".")


def test_glue_modules_are_pinned_exactly_as_the_project() -> None:
    value = glue_python_modules(GLUE_PYTHON_MODULES)
    modules = value.split(",")
    assert modules[0] == f"apache-beam[dataframe]=={_pyproject_pin('apache-beam')}"
    assert modules[0] == "apache-beam[dataframe]==2.77.0"
    locked = locked_versions()
    for module in modules:
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]+\])?==(\S+)", module).groups()  # type: ignore[union-attr]
        assert locked[name.lower()] == version


def test_a_module_missing_from_the_lock_is_a_clear_error() -> None:
    with pytest.raises(PinError, match=r"not pinned in requirements\.lock"):
        pinned("not-a-real-package-xyz")
    with pytest.raises(PinError, match="plain distribution name"):
        pinned("beam>=2")


def test_quality_gate_is_the_libraries_gate_under_training_metric_names() -> None:
    assert DEV.quality_gate == QualityGate()
    assert DEV.gate_metrics == {"test_f1": 0.80, "test_roc_auc": 0.96, "test_accuracy": 0.985}


def test_get_stage_names_the_choices() -> None:
    assert get_stage("dev") is DEV
    with pytest.raises(ConfigError, match=r"unknown stage 'qa': expected one of local, dev, prod"):
        get_stage("qa")
    with pytest.raises(ConfigError, match="pass -c stage=<name>"):
        get_stage(None)


def test_alarm_email_override_is_validated() -> None:
    assert get_stage("prod", alarm_email="ops@example.com").alarm_email == "ops@example.com"
    with pytest.raises(ConfigError, match="alarm_email 'not-an-address'"):
        get_stage("prod", alarm_email="not-an-address")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage": "Prod_1"}, "stage 'Prod_1' must be lower-case"),
        ({"project": "a-very-long-project-name-indeed"}, "longer than 26 characters"),
        ({"retrain_schedule": "every monday"}, "must be cron"),
        ({"account": "12345"}, "account"),
        ({"poll_seconds": 0}, "poll_seconds"),
        ({"training": TrainingSettings(instance_type="m5.large")}, "not a SageMaker instance type"),
        ({"training": TrainingSettings(instance_type="ml.g5.xlarge")}, "local NVMe storage"),
        ({"endpoint": EndpointSettings(capture_sampling_percent=0)}, "capture_sampling_percent"),
        (
            {"endpoint": EndpointSettings(deployment=DeploymentSettings(traffic_routing="CANARY"))},
            "CANARY deployment needs endpoint.initial_instance_count >= 2",
        ),
        ({"endpoint": EndpointSettings(deployment=DeploymentSettings(step_percent=80))}, "step_percent"),
        ({"autoscaling": AutoscalingSettings(min_capacity=3, max_capacity=2)}, "below min_capacity"),
        ({"alarms": AlarmSettings(model_latency_p99_us=250)}, "must be in microseconds"),
        ({"alarms": AlarmSettings(max_5xx_rate_percent=0)}, "max_5xx_rate_percent"),
        ({"alarms": AlarmSettings(evaluation_periods=2, datapoints_to_alarm=3)}, "datapoints_to_alarm"),
        ({"retention": RetentionSettings(log_days=10)}, "log_days=10 is not accepted"),
    ],
)
def test_bad_configuration_raises_a_clear_error(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        dataclasses.replace(DEV, **change)  # type: ignore[arg-type]
    assert "invalid configuration of stage" in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(DEV, poll_seconds=0, alarms=AlarmSettings(max_4xx_rate_percent=500))
    assert "poll_seconds" in str(raised.value) and "max_4xx_rate_percent" in str(raised.value)


def test_quality_gate_bounds_come_from_the_library() -> None:
    with pytest.raises(ValueError, match="within"):
        dataclasses.replace(DEV, quality_gate=QualityGate(min_f1=1.5))


@pytest.mark.parametrize("config", STAGES.values(), ids=list(STAGES))
def test_deployed_hyperparameters_parse_to_the_tuned_train_py_defaults(config: StageConfig) -> None:
    # The AWS job must train the model `mlkit run` measures: the same flags, parsed by train.py itself.
    from training.hyperparameters import build_parser

    parser = build_parser()
    flags = [part for key, value in config.training.hyperparameters().items() for part in (f"--{key}", value)]
    parsed = parser.parse_args([*flags, "--train", "t", "--validation", "v", "--test", "s", "--model-dir", "m"])
    for name in ("epochs", "batch_size", "learning_rate", "hidden_units"):
        assert getattr(parsed, name) == parser.get_default(name), name
