"""LocalStack for the integration tests: started once per session by the kit's own control code.

A LocalStack this project already runs (``mlkit local up``) is reused and left running; otherwise the
session starts one and stops it at the end. When another program holds the default port, the session
moves to a free one (``LOCALSTACK_HOST``), which every client made by ``localstack-client`` follows.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from localstack_helpers import create_training_job, upload_file, wait_for, wait_training

from mlkit.local import control
from mlkit.local.clients import client
from mlkit.local.deploy import DeployReport, deploy
from mlkit.local.layout import PROJECT_ROOT, Layout, gateway_address
from mlkit.packaging import build_glue_libs, build_sourcedir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def localstack() -> Iterator[control.Status]:
    """A healthy LocalStack with the kit's plugin loaded."""
    layout = Layout()
    current = control.status(layout)
    started_here = not current.running
    if started_here:
        host, port = gateway_address()
        if control.port_holder(port) is not None or not _port_free(host, port):
            os.environ["LOCALSTACK_HOST"] = f"127.0.0.1:{_free_port()}"
    status = control.up(layout, timeout=180)
    missing = [name for name in control.PLUGIN_SERVICES if name not in status.services]
    assert not missing, f"the kit's plugin did not load {missing}; see {layout.log_file}"
    yield status
    if started_here:
        control.down(layout)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


@pytest.fixture(scope="session")
def aws(localstack: control.Status) -> Callable[[str], Any]:
    """``aws("s3")`` returns a boto3 client for the running LocalStack."""
    cache: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in cache:
            cache[service] = client(service)
        return cache[service]

    return make


@pytest.fixture
def unique() -> str:
    """A short suffix that keeps names apart when a LocalStack is reused across runs."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def bucket(aws: Callable[[str], Any]) -> str:
    """One S3 bucket for the session's objects."""
    name = f"mlkit-it-{uuid.uuid4().hex[:8]}"
    aws("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def preprocessed(
    aws: Callable[[str], Any], bucket: str, ai4i_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The real Glue preprocessing job, created through the Glue API and run on the real AI4I CSV.

    Returns:
        ``job`` (name), ``run`` (GetJobRun's JobRun), ``raw`` and ``curated`` (S3 URIs).
    """
    glue = aws("glue")
    libs = build_glue_libs(tmp_path_factory.mktemp("glue"))
    script = upload_file(aws, bucket, "code/preprocess_job.py", PROJECT_ROOT / "glue_jobs" / "preprocess_job.py")
    libs_uri = upload_file(aws, bucket, "code/glue_libs.zip", libs)
    raw = upload_file(aws, bucket, "raw/ai4i2020.csv", ai4i_csv)
    curated = f"s3://{bucket}/curated"
    job = f"preprocess-{uuid.uuid4().hex[:8]}"
    glue.create_job(
        Name=job,
        Role="arn:aws:iam::000000000000:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": script, "PythonVersion": "3"},
        DefaultArguments={"--extra-py-files": libs_uri, "--input": raw, "--output": curated},
        GlueVersion="5.0",
        WorkerType="G.1X",
        NumberOfWorkers=2,
    )
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    run = wait_for(
        lambda: glue.get_job_run(JobName=job, RunId=run_id)["JobRun"],
        lambda r: r["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING"),
        timeout=600,
        what=f"Glue run {run_id}",
    )
    return {"job": job, "run": run, "raw": raw, "curated": curated}


@pytest.fixture(scope="session")
def source_uri(aws: Callable[[str], Any], bucket: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The script-mode ``sourcedir.tar.gz``, built by the same code as the CDK asset."""
    return upload_file(aws, bucket, "code/sourcedir.tar.gz", build_sourcedir(tmp_path_factory.mktemp("src")))


@pytest.fixture(scope="session")
def trained(aws: Callable[[str], Any], bucket: str, preprocessed: dict[str, Any], source_uri: str) -> dict[str, Any]:
    """A completed training job on the real curated splits."""
    assert preprocessed["run"]["JobRunState"] == "SUCCEEDED", preprocessed["run"].get("ErrorMessage")
    name = f"train-{int(time.time())}"
    create_training_job(aws, name, source_uri, preprocessed["curated"], bucket)
    return wait_training(aws, name)


@pytest.fixture(scope="session")
def deployed(localstack: control.Status) -> DeployReport:
    """The CDK app (stage local) deployed once per session, bootstrap included, every resource checked."""
    return deploy(Layout(), stage="local", progress=None)
