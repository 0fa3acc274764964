# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""Glue: job definitions from moto, job runs that really execute the job's script.

A run downloads ``Command.ScriptLocation`` and every ``--extra-py-files`` object from LocalStack's S3, then
runs the script with the project's Python 3.11 (Glue 5.0's version) and Glue-style arguments, against
LocalStack. Its output goes to CloudWatch Logs (``/aws-glue/jobs/output`` and ``/aws-glue/jobs/error``,
one stream per run) and its outcome to the ``Glue`` metrics namespace.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localstack.aws.api import CommonServiceException, RequestContext, handler
from localstack.services.stores import AccountRegionBundle, BaseStore, LocalAttribute
from moto.glue.models import glue_backends

from . import aws, glue_args, processes, settings, workflow_metrics

#: Glue's default job timeout: 48 hours.
DEFAULT_TIMEOUT_MINUTES = 2880
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"})


@dataclass
class JobRun:
    """One run of a job; :attr:`view` is what GetJobRun returns."""

    view: dict[str, Any]
    stopper: processes.Stopper = field(default_factory=processes.Stopper)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, **changes: Any) -> None:
        """Change fields of the run, stamping ``LastModifiedOn``."""
        with self.lock:
            self.view.update(changes, LastModifiedOn=datetime.now(UTC))

    def snapshot(self) -> dict[str, Any]:
        """Return a copy of the run as GetJobRun answers it."""
        with self.lock:
            return {k: v for k, v in self.view.items() if v is not None}


class GlueStore(BaseStore):
    """Job runs per job name; job definitions live in moto's Glue backend."""

    job_runs: dict[str, dict[str, JobRun]] = LocalAttribute(default=dict)


glue_stores: AccountRegionBundle = AccountRegionBundle("glue", GlueStore)


class GlueProvider:
    """Glue API: StartJobRun, GetJobRun, GetJobRuns and BatchStopJobRun here; the rest from moto."""

    service = "glue"

    @handler("StartJobRun", expand=False)
    def start_job_run(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Start a run of a job in a background thread and return its ``JobRunId``."""
        job = _job(context, request["JobName"])
        runs = glue_stores[context.account_id][context.region].job_runs.setdefault(job.name, {})
        limit = int((job.execution_property or {}).get("MaxConcurrentRuns", 1))
        active = [r for r in runs.values() if r.view["JobRunState"] not in TERMINAL_STATES]
        if len(active) >= limit:
            raise CommonServiceException(
                "ConcurrentRunsExceededException", f"Concurrent runs exceeded for {job.name}", sender_fault=True
            )
        run_id = "jr_" + secrets.token_hex(32)
        now = datetime.now(UTC)
        timeout = int(request.get("Timeout") or job.timeout or DEFAULT_TIMEOUT_MINUTES)
        run = JobRun(
            view={
                "Id": run_id,
                "Attempt": 0,
                "JobName": job.name,
                "JobMode": "SCRIPT",
                "StartedOn": now,
                "LastModifiedOn": now,
                "JobRunState": "RUNNING",
                "Arguments": dict(request.get("Arguments") or {}),
                "PredecessorRuns": [],
                "AllocatedCapacity": job.allocated_capacity or 10,
                "ExecutionTime": 0,
                "Timeout": timeout,
                "MaxCapacity": float(job.max_capacity or 10.0),
                "WorkerType": request.get("WorkerType") or job.worker_type,
                "NumberOfWorkers": request.get("NumberOfWorkers") or job.number_of_workers,
                "LogGroupName": "/aws-glue/jobs",
                "GlueVersion": job.glue_version,
                "ExecutionClass": job.execution_class or "STANDARD",
            }
        )
        runs[run_id] = run
        threading.Thread(
            target=_execute,
            args=(run, job, context.account_id, context.region),
            name=f"glue-{run_id[:12]}",
            daemon=True,
        ).start()
        return {"JobRunId": run_id}

    @handler("GetJobRun", expand=False)
    def get_job_run(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Describe one run."""
        runs = glue_stores[context.account_id][context.region].job_runs.get(request["JobName"], {})
        run = runs.get(request["RunId"])
        if run is None:
            raise CommonServiceException(
                "EntityNotFoundException", f"Job Run with id {request['RunId']} not found", sender_fault=True
            )
        return {"JobRun": run.snapshot()}

    @handler("GetJobRuns", expand=False)
    def get_job_runs(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """List the runs of a job, newest first."""
        job = _job(context, request["JobName"])
        runs = glue_stores[context.account_id][context.region].job_runs.get(job.name, {})
        views = sorted((r.snapshot() for r in runs.values()), key=lambda v: v["StartedOn"], reverse=True)
        start = int(request.get("NextToken") or 0)
        size = int(request.get("MaxResults") or 200)
        page = views[start : start + size]
        response: dict[str, Any] = {"JobRuns": page}
        if start + size < len(views):
            response["NextToken"] = str(start + size)
        return response

    @handler("UpdateJob", expand=False)
    def update_job(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Replace a job's definition (moto lacks UpdateJob); like AWS, fields left out are reset."""
        job = _job(context, request["JobName"])
        update = request.get("JobUpdate") or {}
        for field_name, attribute in _JOB_UPDATE_FIELDS.items():
            value = update.get(field_name)
            setattr(job, attribute, value if value is not None else _JOB_UPDATE_DEFAULTS.get(attribute))
        job.last_modified_on = datetime.now(UTC)
        return {"JobName": job.name}

    @handler("BatchStopJobRun", expand=False)
    def batch_stop_job_run(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Stop runs: their processes get SIGTERM, and the runs end as STOPPED."""
        runs = glue_stores[context.account_id][context.region].job_runs.get(request["JobName"], {})
        stopped, errors = [], []
        for run_id in request.get("JobRunIds") or []:
            run = runs.get(run_id)
            if run is None:
                errors.append(
                    {
                        "JobName": request["JobName"],
                        "JobRunId": run_id,
                        "ErrorDetail": {"ErrorCode": "EntityNotFoundException", "ErrorMessage": "Job run not found"},
                    }
                )
                continue
            if run.view["JobRunState"] not in TERMINAL_STATES:
                run.update(JobRunState="STOPPING")
            run.stopper.request()
            stopped.append({"JobName": request["JobName"], "JobRunId": run_id})
        return {"SuccessfulSubmissions": stopped, "Errors": errors}


#: JobUpdate fields and the attributes of moto's job that hold them.
_JOB_UPDATE_FIELDS = {
    "Description": "description",
    "LogUri": "log_uri",
    "Role": "role",
    "ExecutionProperty": "execution_property",
    "Command": "command",
    "DefaultArguments": "default_arguments",
    "NonOverridableArguments": "non_overridable_arguments",
    "Connections": "connections",
    "MaxRetries": "max_retries",
    "AllocatedCapacity": "allocated_capacity",
    "Timeout": "timeout",
    "MaxCapacity": "max_capacity",
    "WorkerType": "worker_type",
    "NumberOfWorkers": "number_of_workers",
    "SecurityConfiguration": "security_configuration",
    "NotificationProperty": "notification_property",
    "GlueVersion": "glue_version",
    "ExecutionClass": "execution_class",
}
_JOB_UPDATE_DEFAULTS: dict[str, Any] = {
    "execution_property": {},
    "default_arguments": {},
    "execution_class": "STANDARD",
}


def _job(context: RequestContext, name: str) -> Any:
    job = glue_backends[context.account_id][context.region].jobs.get(name)
    if job is None:
        raise CommonServiceException("EntityNotFoundException", f"Job {name} not found.", sender_fault=True)
    return job


def _execute(run: JobRun, job: Any, account_id: str, region: str) -> None:
    """Run the job's script to completion and record the outcome (runs in its own thread)."""
    run_id = run.view["Id"]
    workdir = settings.work_dir() / "glue" / account_id / region / job.name / run_id
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    factory = aws.clients(account_id, region)
    log_path, error_path = workdir / "output.log", workdir / "error.log"
    started = datetime.now(UTC)
    state, message = "FAILED", None
    try:
        arguments = glue_args.merge_arguments(
            job.default_arguments,
            run.view["Arguments"],
            job.non_overridable_arguments,
            job_name=job.name,
            run_id=run_id,
            temp_dir=str(workdir / "tmp"),
        )
        script_uri = (job.command or {}).get("ScriptLocation")
        if not script_uri:
            raise RuntimeError("the job has no Command.ScriptLocation")
        script = aws.download(factory.s3, script_uri, workdir / "script" / script_uri.rsplit("/", 1)[-1])
        python_path = [str(script.parent)]
        for index, uri in enumerate(glue_args.extra_py_files(arguments)):
            # Archives go on PYTHONPATH themselves; single .py files through their folder.
            local = aws.download(factory.s3, uri, workdir / "libs" / str(index) / uri.rsplit("/", 1)[-1])
            python_path.append(str(local if local.suffix in (".zip", ".whl", ".egg") else local.parent))
        env = processes.aws_env(
            endpoint_url=aws.gateway_url(),
            account_id=account_id,
            region=region,
            extra={"PYTHONPATH": os.pathsep.join(python_path), "GLUE_JOB_NAME": job.name},
        )
        command = [settings.project_python(), str(script), *glue_args.script_argv(arguments)]
        code, timed_out = processes.run_logged(
            command,
            log_path=log_path,
            error_path=error_path,
            env=env,
            timeout=run.view["Timeout"] * 60.0,
            register=run.stopper,
        )
        if run.stopper.requested:
            state = "STOPPED"
        elif timed_out:
            state, message = "TIMEOUT", f"Job run timed out after {run.view['Timeout']} minutes"
        elif code == 0:
            state = "SUCCEEDED"
        else:
            # Like Glue: the end of the script's stderr (the exception) is the run's error message.
            tail = processes.tail_text(error_path, 8).strip()
            message = f"{tail[-2000:]}" if tail else f"the script exited with code {code}"
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        aws.LOG.warning("glue job run %s of %s failed to start: %s", run_id, job.name, message)
    ended = datetime.now(UTC)
    output = processes.tail_text(log_path, 100_000).splitlines()
    errors = processes.tail_text(error_path, 100_000).splitlines()
    if message and not errors:
        errors = [message]
    aws.put_log_lines(factory.logs, "/aws-glue/jobs/output", run_id, output or ["(no output)"])
    if errors:
        aws.put_log_lines(factory.logs, "/aws-glue/jobs/error", run_id, errors)
    if str(job.default_arguments.get("--enable-continuous-cloudwatch-log", "")).lower() == "true":
        # Continuous logging: Glue's default group, or the job's own.
        group = job.default_arguments.get("--continuous-log-logGroup") or "/aws-glue/jobs/logs-v2"
        aws.put_log_lines(factory.logs, group, run_id, output + errors or ["(no output)"])
    run.update(
        JobRunState=state,
        ErrorMessage=message,
        CompletedOn=ended,
        ExecutionTime=int((ended - started).total_seconds()),
    )
    # After the state: like Glue, the metrics and the state-change event follow the run's end.
    _put_metrics(factory, job.name, run_id, state, (ended - started).total_seconds())
    workflow_metrics.glue_state_change(
        factory,
        account_id=account_id,
        region=region,
        detail={
            "jobName": job.name,
            "severity": "INFO" if state == "SUCCEEDED" else "ERROR",
            "state": state,
            "jobRunId": run_id,
            "message": message or "Job run succeeded",
        },
    )


def _put_metrics(factory: Any, job_name: str, run_id: str, state: str, seconds: float) -> None:
    """Emit the Glue job metrics dashboards and alarms read (namespace ``Glue``, ``Type=count``)."""
    failed = 0.0 if state == "SUCCEEDED" else 1.0
    data = []
    for run_dimension in ("ALL", run_id):
        dimensions = [
            {"Name": "JobName", "Value": job_name},
            {"Name": "JobRunId", "Value": run_dimension},
            {"Name": "Type", "Value": "count"},
        ]
        data += [
            {"MetricName": "glue.driver.aggregate.numCompletedTasks", "Dimensions": dimensions, "Value": 1.0 - failed},
            {"MetricName": "glue.driver.aggregate.numFailedTasks", "Dimensions": dimensions, "Value": failed},
            {
                "MetricName": "glue.driver.aggregate.elapsedTime",
                "Dimensions": dimensions,
                "Value": seconds * 1000.0,
                "Unit": "Milliseconds",
            },
        ]
    try:
        factory.cloudwatch.put_metric_data(Namespace="Glue", MetricData=data)
    except Exception:
        aws.LOG.warning("could not put Glue metrics for %s", job_name, exc_info=True)
