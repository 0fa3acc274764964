"""Typed per-stage settings of the CDK app: the one place where local, dev and prod differ.

Constructs never test the stage name; every difference between stages is a field here. Each settings
class checks its own values (``problems()``) and :class:`StageConfig` gathers every problem into one
:class:`ConfigError`, so a bad edit fails synthesis with a message naming the field and the rule.

The stage values themselves live in :mod:`infra.stages`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Final, Literal

from mlkit.quality_gate import QualityGate
from training.hyperparameters import build_parser
from training.metrics import FINAL_METRIC_NAMES

#: TensorFlow ``major.minor`` of the SageMaker training container. ``pyproject.toml`` pins the same
#: release for local training (a unit test keeps the two equal): one model format everywhere.
TENSORFLOW_VERSION: Final = "2.19"
#: TensorFlow Serving ``major.minor`` of the inference container. One minor newer than training: TF
#: Serving loads older SavedModels, and from the 2.20 image on the container's Python service answers
#: a handler's ``falcon.HTTPError`` with its 4xx status, where the 2.19 image turns every handler error
#: into a 500. ``mlkit/endpoint`` emulates the 2.20 behaviour, so local and AWS answer alike.
SERVING_TENSORFLOW_VERSION: Final = "2.20"
#: Python of the TF 2.19 training container (the only one the SageMaker SDK lists for it).
TRAINING_PY_VERSION: Final = "py312"
#: AWS Glue release: Python 3.11, the project's own Python, so Beam behaves the same locally.
GLUE_VERSION: Final = "5.0"
#: Packages the Beam job needs beyond Glue 5.0's own; versions come from ``requirements.lock``.
GLUE_PYTHON_MODULES: Final = ("apache-beam[dataframe]", "pandas", "pyarrow", "numpy")

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: Final = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
_SAGEMAKER_INSTANCE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
# Instance families with local NVMe storage reject a volume KMS key (the disks are always encrypted).
_LOCAL_NVME_FAMILY = re.compile(r"ml\.([a-z]+[0-9]+[a-z]*d[a-z]*|p3dn|p4d|p4de|p5|g4dn|g5|g6|g6e|trn1|inf2)\.")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NAME_PART = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# SageMaker job/model names are at most 63 characters; each run appends "-" and a 36-character UUID.
_MAX_PREFIX_LENGTH: Final = 63 - 37
# train.py's own defaults are the tuned values `mlkit run` measures; the deployed job starts from them.
_TRAIN_DEFAULTS: Final = build_parser()


class ConfigError(ValueError):
    """The stage configuration is invalid; the message lists every problem found."""


Problems = list[str]


def _check(condition: bool, problems: Problems, message: str) -> None:
    if not condition:
        problems.append(message)


@dataclass(frozen=True)
class GlueSettings:
    """The preprocessing Glue job.

    Attributes:
        worker_type: Glue worker type (``G.1X`` is 4 vCPU / 16 GB; Beam runs on the driver).
        workers: Number of workers; Glue ETL jobs need at least 2.
        timeout_minutes: Run time after which Glue stops the job.
        python_modules: Distributions for ``--additional-python-modules``, pinned from the lock file.
    """

    worker_type: str = "G.1X"
    workers: int = 2
    timeout_minutes: int = 60
    python_modules: tuple[str, ...] = GLUE_PYTHON_MODULES

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        _check(self.worker_type in {"G.1X", "G.2X", "G.4X", "G.8X"}, found, f"glue.worker_type {self.worker_type!r}")
        _check(self.workers >= 2, found, f"glue.workers must be at least 2, got {self.workers}")
        _check(1 <= self.timeout_minutes <= 2880, found, "glue.timeout_minutes must be within 1..2880")
        _check(bool(self.python_modules), found, "glue.python_modules must name at least apache-beam")
        return found


@dataclass(frozen=True)
class TrainingSettings:
    """The SageMaker training job (prebuilt TensorFlow container, script mode).

    Attributes:
        instance_type: Training instance type.
        instance_count: Number of instances (``train.py`` trains on one; more only multiplies cost).
        volume_size_gb: ML storage volume per instance.
        max_runtime_minutes: SageMaker stops the job after this long.
        encrypt_volume: Encrypt the ML storage volume with the kit's key. Instance types with local
            NVMe storage reject a volume key (their disks are always encrypted): set ``False`` there.
        epochs: ``--epochs`` hyperparameter (early stopping may end sooner).
        batch_size: ``--batch-size`` hyperparameter.
        learning_rate: ``--learning-rate`` hyperparameter.
        hidden_units: ``--hidden-units`` hyperparameter, the dense layer widths.

    The hyperparameters default to ``train.py``'s own defaults, so the deployed job trains exactly the
    model that ``mlkit run`` evaluates locally unless a stage overrides them.
    """

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 30
    max_runtime_minutes: int = 60
    encrypt_volume: bool = True
    epochs: int = _TRAIN_DEFAULTS.get_default("epochs")
    batch_size: int = _TRAIN_DEFAULTS.get_default("batch_size")
    learning_rate: float = _TRAIN_DEFAULTS.get_default("learning_rate")
    hidden_units: tuple[int, ...] = _TRAIN_DEFAULTS.get_default("hidden_units")

    def hyperparameters(self) -> dict[str, str]:
        """Return the hyperparameters as ``train.py`` flag names and string values."""
        return {
            "epochs": str(self.epochs),
            "batch-size": str(self.batch_size),
            "learning-rate": repr(self.learning_rate),
            "hidden-units": ",".join(str(u) for u in self.hidden_units),
        }

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        _check(bool(_SAGEMAKER_INSTANCE.fullmatch(self.instance_type)), found, _bad_instance("training", self))
        _check(self.instance_count >= 1, found, "training.instance_count must be at least 1")
        _check(1 <= self.volume_size_gb <= 16384, found, "training.volume_size_gb must be within 1..16384")
        _check(1 <= self.max_runtime_minutes <= 28 * 24 * 60, found, "training.max_runtime_minutes out of range")
        _check(
            not (self.encrypt_volume and _LOCAL_NVME_FAMILY.match(self.instance_type)), found, _nvme("training", self)
        )
        _check(self.epochs > 0 and self.batch_size > 0, found, "training.epochs and batch_size must be positive")
        _check(0 < self.learning_rate < 1, found, "training.learning_rate must be within (0, 1)")
        _check(bool(self.hidden_units) and min(self.hidden_units, default=0) > 0, found, "training.hidden_units")
        return found


@dataclass(frozen=True)
class DeploymentSettings:
    """Blue/green deployment guardrails of endpoint updates.

    Attributes:
        traffic_routing: ``ALL_AT_ONCE``, ``CANARY`` (shift ``step_percent`` first, then the rest) or
            ``LINEAR`` (shift ``step_percent`` per step).
        step_percent: Capacity share of the canary or of each linear step.
        wait_interval_seconds: Baking time between traffic shifts, watching the rollback alarms.
        termination_wait_seconds: How long the old (blue) fleet stays up after the full shift.
        max_execution_timeout_seconds: Upper bound of the whole blue/green deployment.
    """

    traffic_routing: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"] = "ALL_AT_ONCE"
    step_percent: int = 50
    wait_interval_seconds: int = 300
    termination_wait_seconds: int = 300
    max_execution_timeout_seconds: int = 3600

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        _check(
            self.traffic_routing in {"ALL_AT_ONCE", "CANARY", "LINEAR"},
            found,
            f"deployment.traffic_routing {self.traffic_routing!r}",
        )
        # SageMaker caps a canary at half of the new fleet: a bigger one is no canary.
        _check(1 <= self.step_percent <= 50, found, "deployment.step_percent must be within 1..50")
        _check(0 <= self.wait_interval_seconds <= 3600, found, "deployment.wait_interval_seconds within 0..3600")
        _check(0 <= self.termination_wait_seconds <= 3600, found, "deployment.termination_wait_seconds 0..3600")
        _check(
            600 <= self.max_execution_timeout_seconds <= 28800,
            found,
            "deployment.max_execution_timeout_seconds must be within 600..28800",
        )
        return found


@dataclass(frozen=True)
class EndpointSettings:
    """The real-time endpoint (TF Serving container).

    Attributes:
        instance_type: Hosting instance type.
        initial_instance_count: Instances of a new endpoint. With autoscaling, an update keeps the
            count the endpoint has scaled to instead (``RetainAllVariantProperties``).
        variant_name: Production variant name; alarms and autoscaling refer to it.
        capture_sampling_percent: Share of requests whose input and output are captured to S3.
        network_isolation: Run the serving container without network access (``code/lib`` only).
        encrypt_volume: Encrypt the instances' ML storage volumes with the kit's key (see
            :attr:`TrainingSettings.encrypt_volume` for instance types with local NVMe storage).
        deployment: Blue/green guardrails of updates.
    """

    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    variant_name: str = "AllTraffic"
    capture_sampling_percent: int = 100
    network_isolation: bool = True
    encrypt_volume: bool = True
    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        _check(bool(_SAGEMAKER_INSTANCE.fullmatch(self.instance_type)), found, _bad_instance("endpoint", self))
        _check(self.initial_instance_count >= 1, found, "endpoint.initial_instance_count must be at least 1")
        _check(
            bool(re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", self.variant_name)),
            found,
            f"endpoint.variant_name {self.variant_name!r} is not a valid SageMaker name",
        )
        _check(0 < self.capture_sampling_percent <= 100, found, "endpoint.capture_sampling_percent within 1..100")
        _check(
            not (self.encrypt_volume and _LOCAL_NVME_FAMILY.match(self.instance_type)), found, _nvme("endpoint", self)
        )
        if self.deployment.traffic_routing == "CANARY":
            _check(
                self.initial_instance_count >= 2,
                found,
                "a CANARY deployment needs endpoint.initial_instance_count >= 2 (a canary is part of a fleet)",
            )
        return found + self.deployment.problems()


@dataclass(frozen=True)
class AutoscalingSettings:
    """Target tracking on ``SageMakerVariantInvocationsPerInstance``.

    Attributes:
        min_capacity: Fewest instances.
        max_capacity: Most instances.
        invocations_per_instance: Target invocations per instance per minute.
        scale_in_cooldown_seconds: Wait after a scale-in before the next.
        scale_out_cooldown_seconds: Wait after a scale-out before the next.
    """

    min_capacity: int = 1
    max_capacity: int = 2
    invocations_per_instance: float = 1000.0
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        _check(self.min_capacity >= 1, found, "autoscaling.min_capacity must be at least 1")
        _check(
            self.max_capacity >= self.min_capacity,
            found,
            f"autoscaling.max_capacity ({self.max_capacity}) is below min_capacity ({self.min_capacity})",
        )
        _check(self.invocations_per_instance > 0, found, "autoscaling.invocations_per_instance must be positive")
        return found


@dataclass(frozen=True)
class AlarmSettings:
    """Endpoint alarm thresholds. They also drive the automatic rollback of endpoint updates.

    Attributes:
        model_latency_p99_us: ModelLatency p99 above this many **microseconds** (the metric's unit) alarms.
        max_5xx_rate_percent: Share of invocations answered 5XX above which the endpoint alarms.
        max_4xx_rate_percent: Share of invocations answered 4XX above which the endpoint alarms.
        period_seconds: Metric period (endpoint metrics are 1-minute).
        evaluation_periods: Periods looked at per evaluation.
        datapoints_to_alarm: Breaching periods among them that raise the alarm.
    """

    model_latency_p99_us: int = 100_000
    max_5xx_rate_percent: float = 1.0
    max_4xx_rate_percent: float = 5.0
    period_seconds: int = 60
    evaluation_periods: int = 5
    datapoints_to_alarm: int = 3

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        # Below 1 ms a p99 alarm would fire on any real model: most likely milliseconds were meant.
        _check(
            1_000 <= self.model_latency_p99_us <= 60_000_000,
            found,
            f"alarms.model_latency_p99_us={self.model_latency_p99_us} must be in microseconds (1000..60000000)",
        )
        for name in ("max_5xx_rate_percent", "max_4xx_rate_percent"):
            _check(0 < getattr(self, name) <= 100, found, f"alarms.{name} must be a percentage within (0, 100]")
        _check(self.period_seconds in {10, 30} or self.period_seconds % 60 == 0, found, "alarms.period_seconds")
        _check(
            1 <= self.datapoints_to_alarm <= self.evaluation_periods,
            found,
            "alarms.datapoints_to_alarm must be within 1..evaluation_periods",
        )
        return found


@dataclass(frozen=True)
class RetentionSettings:
    """How long temporary data and logs are kept (days).

    Attributes:
        log_days: CloudWatch log groups (one of :data:`LOG_RETENTION_DAYS`).
        curated_days: Curated runs (``runs/<id>/``), rebuilt from raw data by the next run.
        capture_days: Captured endpoint requests.
        access_log_days: S3 server access logs.
        glue_temp_days: Glue's temporary directory.
        noncurrent_artifact_days: Overwritten versions of artifacts.
    """

    log_days: int = 30
    curated_days: int = 30
    capture_days: int = 90
    access_log_days: int = 90
    glue_temp_days: int = 7
    noncurrent_artifact_days: int = 30

    def problems(self) -> Problems:
        """Return a message per invalid value."""
        found: Problems = []
        _check(self.log_days in LOG_RETENTION_DAYS, found, f"retention.log_days={self.log_days} is not accepted")
        for item in fields(self):
            _check(getattr(self, item.name) >= 1, found, f"retention.{item.name} must be at least 1 day")
        return found


@dataclass(frozen=True)
class StageConfig:
    """Everything that differs between stages.

    Attributes:
        stage: Stage name; part of every physical name, so stages can share an account.
        retain_data: Keep buckets, the key, log groups and the model registry when stacks are deleted.
        project: Prefix of every physical name.
        account: Deploy to this account only; ``None`` keeps the stacks environment-agnostic.
        region: Deploy to this region only; ``None`` keeps the stacks environment-agnostic.
        alarm_email: Subscribe this address to the alerts topic.
        retrain_schedule: EventBridge ``cron(...)``/``rate(...)`` that starts the pipeline, if any.
        raw_input_key: Key in the raw bucket of the CSV the pipeline reads by default.
        poll_seconds: Wait between status polls of training jobs and endpoints.
        pipeline_timeout_hours: The pipeline execution fails after this long.
        quality_gate: Minimum test metrics a model needs to be registered and deployed.
        glue: The preprocessing job.
        training: The training job.
        endpoint: The endpoint.
        autoscaling: Endpoint autoscaling; ``None`` leaves the instance count fixed.
        alarms: Endpoint alarm thresholds.
        retention: Lifetimes of temporary data and logs.
    """

    stage: str
    retain_data: bool
    project: str = "mlkit"
    account: str | None = None
    region: str | None = None
    alarm_email: str | None = None
    retrain_schedule: str | None = None
    raw_input_key: str = "incoming/data.csv"
    poll_seconds: int = 60
    pipeline_timeout_hours: int = 12
    quality_gate: QualityGate = field(default_factory=QualityGate)
    glue: GlueSettings = field(default_factory=GlueSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    autoscaling: AutoscalingSettings | None = field(default_factory=AutoscalingSettings)
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    def __post_init__(self) -> None:
        found = self._own_problems()
        for item in fields(self):
            value = getattr(self, item.name)
            if is_dataclass(value) and hasattr(value, "problems"):
                found += value.problems()
        if found:
            raise ConfigError(f"invalid configuration of stage {self.stage!r}:\n  - " + "\n  - ".join(found))

    def _own_problems(self) -> Problems:
        found: Problems = []
        for name in ("project", "stage"):
            value = getattr(self, name)
            _check(
                bool(_NAME_PART.fullmatch(value)),
                found,
                f"{name} {value!r} must be lower-case letters, digits and single hyphens (it names resources)",
            )
        _check(
            len(self.prefix) <= _MAX_PREFIX_LENGTH,
            found,
            f"prefix {self.prefix!r} is longer than {_MAX_PREFIX_LENGTH} characters (SageMaker names hold 63)",
        )
        _check(self.account is None or bool(re.fullmatch(r"\d{12}", self.account)), found, "account: 12 digits")
        _check(self.region is None or bool(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region)), found, "region")
        if self.alarm_email is not None:
            _check(bool(_EMAIL.fullmatch(self.alarm_email)), found, f"alarm_email {self.alarm_email!r}")
        if self.retrain_schedule is not None:
            _check(
                bool(re.fullmatch(r"(cron|rate)\(.+\)", self.retrain_schedule)),
                found,
                f"retrain_schedule {self.retrain_schedule!r} must be cron(...) or rate(...)",
            )
        _check(
            bool(self.raw_input_key) and not self.raw_input_key.startswith("/"),
            found,
            "raw_input_key must be a relative S3 key",
        )
        _check(1 <= self.poll_seconds <= 3600, found, "poll_seconds must be within 1..3600")
        _check(1 <= self.pipeline_timeout_hours <= 24 * 7, found, "pipeline_timeout_hours must be within 1..168")
        missing = [m for m in self.gate_metrics if m not in FINAL_METRIC_NAMES]
        _check(not missing, found, f"quality gate metrics {missing} are not printed by train.py")
        return found

    # ---- names: every physical name is derived here, so two stages never collide ----

    @property
    def prefix(self) -> str:
        """``<project>-<stage>``, the start of every physical name."""
        return f"{self.project}-{self.stage}"

    def name(self, suffix: str) -> str:
        """Return the physical name ``<prefix>-<suffix>``."""
        return f"{self.prefix}-{suffix}"

    def stack_name(self, unit: str) -> str:
        """Return the CloudFormation stack name of a deployable unit."""
        return self.name(unit)

    @property
    def endpoint_name(self) -> str:
        """The endpoint's stable name: updates replace its model, never its name."""
        return self.name("endpoint")

    @property
    def glue_job_name(self) -> str:
        """Name of the preprocessing Glue job."""
        return self.name("preprocess")

    @property
    def state_machine_name(self) -> str:
        """Name of the training pipeline state machine."""
        return self.name("pipeline")

    @property
    def model_package_group_name(self) -> str:
        """Name of the model registry group."""
        return self.name("models")

    def alarm_name(self, what: str) -> str:
        """Return an alarm's physical name (the pipeline's rollback configuration refers to it)."""
        return self.name(what)

    @property
    def gate_metrics(self) -> dict[str, float]:
        """Quality gate minimums keyed by the metric names of the training job (``test_f1``...)."""
        return {f"test_{name}": minimum for name, minimum in self.quality_gate.minimums().items()}


def _bad_instance(what: str, settings: TrainingSettings | EndpointSettings) -> str:
    return f"{what}.instance_type {settings.instance_type!r} is not a SageMaker instance type such as ml.m5.large"


def _nvme(what: str, settings: TrainingSettings | EndpointSettings) -> str:
    return (
        f"{what}.instance_type {settings.instance_type} has local NVMe storage, which rejects a volume KMS key"
        f" (its disks are always encrypted); set {what}.encrypt_volume=False"
    )
