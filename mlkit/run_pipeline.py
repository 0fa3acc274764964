"""``mlkit run``: the whole pipeline in one process tree, no servers and no AWS account.

preprocess (the Glue entry script, as Glue runs it) -> train (the SageMaker training contract)
-> evaluate + quality gate -> package (``model.tar.gz``) -> serve (the endpoint emulation, over
HTTP) -> send the test split and check served == offline predictions. Each step runs the same
code that the AWS stacks deploy.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlkit.endpoint.model_dir import ModelLayoutError, extract_model, find_layout
from mlkit.packaging import PROJECT_ROOT, build_sourcedir
from mlkit.progress import Steps
from mlkit.quality_gate import QualityGate
from mlkit.schema import SPLITS, DatasetSchema
from mlkit.serving_check import compare, invoke_rows, percentile, read_offline_predictions, read_split
from mlkit.training_contract import run_training_job

GLUE_SCRIPT = PROJECT_ROOT / "glue_jobs" / "preprocess_job.py"
ENDPOINT_READY_TIMEOUT_S = 240.0  # SageMaker gives a container 4 minutes to pass /ping


class PipelineError(RuntimeError):
    """A pipeline step failed; the message says which and why."""


@dataclass
class RunOptions:
    """What ``mlkit run`` was asked to do."""

    data: Path
    workdir: Path
    schema_path: Path | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    gate: QualityGate = field(default_factory=QualityGate)


def run(options: RunOptions) -> dict[str, Any]:
    """Run every step, write ``<workdir>/report.json`` and return the report.

    Raises:
        PipelineError: On any failed step (the partial report is still written).
    """
    if not options.data.is_file():
        raise PipelineError(f"input data not found: {options.data}")
    schema = DatasetSchema.load(options.schema_path)
    workdir = options.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    steps = Steps(total=6)
    report: dict[str, Any] = {
        "status": "running",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": str(options.data.resolve()),
        "workdir": str(workdir),
        "dataset": schema.name,
        "label": schema.label,
    }
    try:
        _run_steps(options, schema, workdir, steps, report)
        report["status"] = "succeeded"
    except PipelineError as error:
        report["status"] = "failed"
        report["error"] = str(error)
        raise
    except Exception as error:
        # Whatever else a step raised (a failed training job, a refused connection...) ends the run with
        # the step's name and the reason, never with a bare traceback.
        report["status"] = "failed"
        report["error"] = f"{steps.current or 'setup'}: {error}"
        raise PipelineError(report["error"]) from error
    finally:
        report["seconds"] = {**steps.seconds, "total": round(sum(steps.seconds.values()), 2)}
        (workdir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _run_steps(options: RunOptions, schema: DatasetSchema, workdir: Path, steps: Steps, report: dict[str, Any]) -> None:
    curated = workdir / "curated"
    with steps.step("preprocess (Glue job script, Beam)"):
        report["rows"] = preprocess(options.data, curated, options.schema_path, workdir / "logs" / "preprocess.log")
        rows = report["rows"]
        steps.say(
            f"      read {rows['read']}, accepted {rows['accepted']}, "
            f"rejected {rows['rejected']}, duplicates {rows['duplicates']}"
        )

    with steps.step("train (SageMaker training contract)"):
        source_tar = build_sourcedir(workdir / "artifacts")
        hyperparameters = dict(options.hyperparameters)
        if options.schema_path:
            hyperparameters["schema"] = str(options.schema_path.resolve())
        result = run_training_job(
            job_name=f"mlkit-run-{uuid.uuid4().hex[:8]}",
            source_tar=source_tar,
            channels={split: curated / split for split in SPLITS},
            hyperparameters=hyperparameters,
            base_dir=workdir / "training",
            echo=lambda line: _show_training_progress(steps, line),
        )
        steps.say(f"      training log: {result.log_path}")
        report["model_tar"] = str(result.model_tar)
        evaluation = result.evaluation

    with steps.step("evaluate (quality gate on the test split)"):
        metrics = evaluation["metrics"]
        report["metrics"] = metrics
        report["threshold"] = evaluation["threshold"]
        report["confusion_matrix"] = evaluation["confusion_matrix"]
        failures = options.gate.check(metrics)
        report["quality_gate"] = {"passed": not failures, "minimums": options.gate.minimums(), "failures": failures}
        steps.say("      " + ", ".join(f"{k} {float(v):.4f}" for k, v in metrics.items()))
        if failures:
            raise PipelineError("model failed the quality gate: " + "; ".join(failures))

    with steps.step("package (model.tar.gz layout check)"):
        report["model_files"] = check_model_layout(result.model_tar, workdir / "package-check")

    served = []
    with (
        steps.step("serve + invoke (endpoint emulation over HTTP, whole test split)"),
        endpoint(result.model_tar, workdir / "endpoint") as url,
    ):
        test_rows = read_split(curated / "test")
        steps.say(f"      endpoint ready at {url}; sending {len(test_rows)} requests")
        served = list(
            invoke_rows(
                f"{url}/invocations",
                test_rows,
                schema,
                on_progress=lambda n: steps.say(f"      {n}/{len(test_rows)} requests"),
            )
        )

    with steps.step("compare served with offline predictions"):
        comparison = compare(served, read_offline_predictions(result.output_dir / "test_predictions.csv"))
        latencies = [s.latency_ms for s in served]
        report["endpoint"] = {
            "requests": len(served),
            "latency_ms": {
                "p50": round(percentile(latencies, 50), 3),
                "p99": round(percentile(latencies, 99), 3),
                "max": round(max(latencies), 3) if latencies else None,
            },
            "served_equals_offline": comparison.as_dict(),
        }
        if not comparison.equal:
            raise PipelineError(f"served predictions differ from the offline evaluation: {comparison.as_dict()}")


def _show_training_progress(steps: Steps, line: str) -> None:
    # The full log (toolkit environment dump, Keras epochs) goes to the log file; the console gets
    # the script's own progress lines and its final metrics.
    text = line.strip()
    if " training: " in text:
        steps.say(f"      {text.split(' training: ', 1)[1]}")
    elif text.startswith("METRIC "):
        steps.say(f"      {text}")


def preprocess(data: Path, output: Path, schema_path: Path | None, log_path: Path) -> dict[str, Any]:
    """Run the Glue entry script as Glue would (a fresh interpreter, Glue's own arguments added).

    Returns:
        The job's ``summary.json`` (row counts and split sizes).
    """
    args = [
        sys.executable,
        str(GLUE_SCRIPT),
        "--JOB_NAME",
        "mlkit-run-preprocess",
        "--JOB_RUN_ID",
        f"jr_{uuid.uuid4().hex}",
        "--input",
        str(data.resolve()),
        "--output",
        str(output),
    ]
    if schema_path:
        args += ["--schema", str(schema_path.resolve())]
    _run_logged(args, log_path, what="preprocessing job")
    summary: dict[str, Any] = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    return summary


def check_model_layout(model_tar: Path, scratch: Path) -> list[str]:
    """Check ``model.tar.gz`` as the TF Serving container loads it; return its file list.

    The archive is unpacked into ``scratch`` and validated by the endpoint emulation's own loader, so
    this step and the endpoint can never disagree about what a servable layout is.

    Raises:
        PipelineError: If the container could not serve it, or the kit's code or evaluation is missing.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        layout = find_layout(extract_model(model_tar, scratch))
    except ModelLayoutError as error:
        raise PipelineError(f"{model_tar} cannot be served: {error}") from error
    problems = []
    if layout.inference_script is None:
        problems.append("code/inference.py missing")
    if not (layout.root / "evaluation.json").is_file():
        problems.append("evaluation.json missing")
    if not (layout.version_dir / "variables").is_dir():
        problems.append(f"{layout.version_dir.name}/variables/ missing")
    if problems:
        raise PipelineError(f"{model_tar} is incomplete: " + "; ".join(problems))
    with tarfile.open(model_tar) as archive:
        return sorted(archive.getnames())


@contextmanager
def endpoint(model_tar: Path, workdir: Path) -> Iterator[str]:
    """Serve ``model_tar`` with the endpoint emulation in its own process; yield its base URL."""
    port = _free_port()
    log_path = workdir / "endpoint.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlkit.endpoint_server",
                "--model-tar",
                str(model_tar),
                "--port",
                str(port),
                "--workdir",
                str(workdir / "model"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_ping(url, process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_ping(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + ENDPOINT_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PipelineError(f"endpoint exited with code {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise PipelineError(f"endpoint did not pass /ping within {ENDPOINT_READY_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")


def _run_logged(args: list[str], log_path: Path, *, what: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        completed = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=_child_env(), check=False)
    if completed.returncode != 0:
        raise PipelineError(f"{what} failed (exit {completed.returncode}); log {log_path}:\n{_tail(log_path)}")


def _child_env() -> Mapping[str, str]:
    # TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) drowns the useful lines.
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
