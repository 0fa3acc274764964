"""SageMaker training jobs run by the kit's real training contract (``python -m mlkit.training_contract``).

A job downloads ``sagemaker_submit_directory`` (the script-mode ``sourcedir.tar.gz``) and its channels from
LocalStack's S3, trains in a subprocess of the project's Python, and uploads ``model.tar.gz`` to
``<S3OutputPath>/<job>/output/model.tar.gz``, exactly where SageMaker puts it.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import aws, metrics, processes, settings

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: How SageMaker's failure reasons start; a reason without one is the algorithm's own.
_REASON_PREFIXES = ("AlgorithmError:", "ClientError:", "MaxRuntimeExceeded:", "InternalServerError:")
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


@dataclass
class TrainingJob:
    """One training job; :attr:`view` is what DescribeTrainingJob returns."""

    view: dict[str, Any]
    stopper: processes.Stopper = field(default_factory=processes.Stopper)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def status(self) -> str:
        """``TrainingJobStatus``."""
        return str(self.view["TrainingJobStatus"])

    def secondary(self, status: str, message: str, **changes: Any) -> None:
        """Move to a new secondary status, closing the previous transition (as SageMaker reports them)."""
        now = datetime.now(UTC)
        with self.lock:
            transitions = self.view.setdefault("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = now
            transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
            if status in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
                transitions[-1]["EndTime"] = now
            self.view.update(changes, SecondaryStatus=status, LastModifiedTime=now)

    def snapshot(self) -> dict[str, Any]:
        """Return a copy of the job as DescribeTrainingJob answers it."""
        with self.lock:
            view = {k: v for k, v in self.view.items() if v is not None}
            view["SecondaryStatusTransitions"] = [dict(t) for t in view.get("SecondaryStatusTransitions", [])]
            return view

    def summary(self) -> dict[str, Any]:
        """Return the job as ListTrainingJobs answers it."""
        with self.lock:
            keys = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime", "LastModifiedTime")
            summary = {k: self.view[k] for k in keys if self.view.get(k) is not None}
            summary["TrainingJobStatus"] = self.view["TrainingJobStatus"]
            return summary


def new_job(request: dict[str, Any], arn: str) -> TrainingJob:
    """Create the record of a job from its CreateTrainingJob request (status ``InProgress``/``Starting``)."""
    now = datetime.now(UTC)
    view = {
        key: request.get(key)
        for key in (
            "TrainingJobName",
            "HyperParameters",
            "AlgorithmSpecification",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "VpcConfig",
            "StoppingCondition",
            "EnableNetworkIsolation",
            "EnableInterContainerTrafficEncryption",
            "EnableManagedSpotTraining",
            "CheckpointConfig",
            "DebugHookConfig",
            "ExperimentConfig",
            "Environment",
            "RetryStrategy",
        )
    }
    view.update(
        TrainingJobArn=arn,
        TrainingJobStatus="InProgress",
        SecondaryStatus="Starting",
        CreationTime=now,
        LastModifiedTime=now,
        SecondaryStatusTransitions=[
            {"Status": "Starting", "StartTime": now, "StatusMessage": "Preparing the instances for training"}
        ],
        ModelArtifacts={"S3ModelArtifacts": ""},
    )
    return TrainingJob(view=view)


def run(job: TrainingJob, account_id: str, region: str) -> None:
    """Execute a training job to the end (runs in its own thread)."""
    name = job.view["TrainingJobName"]
    workdir = settings.work_dir() / "training" / account_id / region / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    factory = aws.clients(account_id, region)
    log_path = workdir / "training.log"
    output_path = str((job.view.get("OutputDataConfig") or {}).get("S3OutputPath", "")).rstrip("/")
    model_uri = f"{output_path}/{name}/output/model.tar.gz"
    started = datetime.now(UTC)
    with job.lock:
        job.view["TrainingStartTime"] = started
    status, secondary, reason = "Failed", "Failed", None
    try:
        command = _prepare(job, factory, workdir)
        env = processes.aws_env(
            endpoint_url=aws.gateway_url(),
            account_id=account_id,
            region=region,
            extra={k: str(v) for k, v in (job.view.get("Environment") or {}).items()},
        )
        limit = (job.view.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        code, timed_out = processes.run_logged(
            command, log_path=log_path, env=env, timeout=float(limit) if limit else None, register=job.stopper
        )
        if job.stopper.requested:
            status, secondary = "Stopped", "Stopped"
        elif timed_out:
            status, secondary = "Stopped", "MaxRuntimeExceeded"
        elif code != 0:
            # The contract runner writes the reason where the container would: /opt/ml/output/failure.
            failure = workdir / "opt_ml" / "output" / "failure"
            detail = failure.read_text(errors="replace").strip() if failure.exists() else ""
            detail = detail or processes.tail_text(log_path, 5)
            # The contract runner already names the kind of failure, as SageMaker's reasons do.
            reason = (detail if detail.startswith(_REASON_PREFIXES) else f"AlgorithmError: {detail}")[:1024]
        else:
            job.secondary("Uploading", "Uploading generated training model")
            aws.upload(factory.s3, workdir / "model.tar.gz", model_uri)
            if (workdir / "output.tar.gz").exists():
                aws.upload(factory.s3, workdir / "output.tar.gz", model_uri.replace("/model.tar.gz", "/output.tar.gz"))
            status, secondary = "Completed", "Completed"
    except _ClientError as error:
        reason = f"ClientError: {error}"
    except Exception as error:
        reason = f"InternalServerError: {type(error).__name__}: {error}"
        aws.LOG.warning("training job %s failed: %s", name, reason, exc_info=True)
    _finish(
        job,
        factory=factory,
        log_path=log_path,
        started=started,
        status=status,
        secondary=secondary,
        reason=reason,
        model_uri=model_uri,
    )


def _prepare(job: TrainingJob, factory: Any, workdir: Path) -> list[str]:
    """Download the source and the channels; return the contract runner's command line."""
    hyperparameters = dict(job.view.get("HyperParameters") or {})
    job.secondary("Downloading", "Downloading input data")
    source = _hyperparameter(hyperparameters, "sagemaker_submit_directory")
    if not source:
        raise _ClientError("the hyperparameter sagemaker_submit_directory (the S3 URI of sourcedir.tar.gz) is missing")
    source_tar = aws.download(factory.s3, source, workdir / "sourcedir.tar.gz")
    channel_args = []
    for channel in job.view.get("InputDataConfig") or []:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        folder = workdir / "channels" / channel["ChannelName"]
        if aws.download_prefix(factory.s3, uri, folder) == 0:
            raise _ClientError(f"no objects under {uri} for channel {channel['ChannelName']!r}")
        channel_args += ["--channel", f"{channel['ChannelName']}={folder}"]
    job.secondary("Training", "Training image download completed. Training in progress.")
    return [
        settings.project_python(),
        "-m",
        "mlkit.training_contract",
        "--job-name",
        str(job.view["TrainingJobName"]),
        "--source",
        str(source_tar),
        *channel_args,
        "--hyperparameters",
        json.dumps(hyperparameters),
        "--base-dir",
        str(workdir / "opt_ml"),
        "--model-tar",
        str(workdir / "model.tar.gz"),
        # SM_OUTPUT_DATA_DIR, which SageMaker uploads as output.tar.gz beside model.tar.gz.
        "--output-tar",
        str(workdir / "output.tar.gz"),
        "--program",
        _hyperparameter(hyperparameters, "sagemaker_program") or "train.py",
    ]


def _finish(
    job: TrainingJob,
    *,
    factory: Any,
    log_path: Path,
    started: datetime,
    status: str,
    secondary: str,
    reason: str | None,
    model_uri: str,
) -> None:
    """Publish the log, derive the final metrics and record the outcome."""
    ended = datetime.now(UTC)
    lines = processes.tail_text(log_path, 1_000_000).splitlines()
    stream = f"{job.view['TrainingJobName']}/algo-1-{int(started.timestamp())}"
    try:
        aws.put_log_lines(factory.logs, LOG_GROUP, stream, lines or ["(no output)"])
    except Exception:  # a lost log must not leave the job InProgress for ever
        aws.LOG.warning("training job %s: could not publish its log", job.view["TrainingJobName"], exc_info=True)
    definitions = (job.view.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    seconds = max(1, int((ended - started).total_seconds()))
    messages = {"Completed": "Training job completed", "Failed": reason or "Training job failed"}
    job.secondary(
        secondary,
        messages.get(secondary, "Training job stopped"),
        TrainingJobStatus=status,
        FailureReason=reason,
        TrainingEndTime=ended,
        TrainingTimeInSeconds=seconds,
        BillableTimeInSeconds=seconds,
        FinalMetricDataList=metrics.final_metrics(lines, definitions, ended),
        ModelArtifacts={"S3ModelArtifacts": model_uri if status == "Completed" else ""},
    )


def stop(job: TrainingJob) -> None:
    """Ask a running job to stop; its process gets SIGTERM and the job ends as ``Stopped``."""
    if job.status not in TERMINAL:
        with job.lock:
            job.view["TrainingJobStatus"] = "Stopping"
        job.secondary("Stopping", "Stopping the training job")
    job.stopper.request()


class _ClientError(Exception):
    """The job's configuration or inputs are wrong (SageMaker's ``ClientError`` failures)."""


def _hyperparameter(hyperparameters: dict[str, Any], name: str) -> str:
    """Return a script-mode hyperparameter; the SDK stores them JSON-encoded (``'"s3://..."'``)."""
    value = str(hyperparameters.get(name) or "")
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value
