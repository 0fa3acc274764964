"""Run a SageMaker training job on this machine, following the training container's contract.

What a SageMaker TensorFlow training container does, and what this runner reproduces:

1. The platform lays out ``/opt/ml``: ``input/config/{hyperparameters,inputdataconfig,resourceconfig}.json``
   (every hyperparameter value a string), ``input/data/<channel>/`` with each channel's files (File
   mode), an empty ``model/`` and ``output/``. Here the base directory is any folder, announced to the
   toolkit with ``SAGEMAKER_BASE_DIR``, which the ``sagemaker-training`` toolkit honours for exactly this.
2. The container runs the toolkit's trainer (``sagemaker_training.cli.train``, the image's ``train``
   command). It reads the config files, downloads and extracts ``sagemaker_submit_directory``
   (``sourcedir.tar.gz``) into ``code/``, builds the ``SM_*`` environment and runs ``sagemaker_program``
   with the hyperparameters as ``--name value`` flags. The real toolkit does all of this here too; only
   the TF image's framework module (``SAGEMAKER_TRAINING_MODULE``) is replaced by :func:`container_main`,
   which launches the program the same way: through the toolkit, with stderr captured into the failure
   reason.
3. On failure the reason lands in ``output/failure`` (``DescribeTrainingJob.FailureReason``); on success
   ``model/`` becomes ``model.tar.gz`` and ``output/data/`` becomes ``output.tar.gz``. Metric values
   come from the log through the job's ``MetricDefinitions`` regexes.

The runner uses nothing from AWS. The kit's LocalStack plugin runs it as a subprocess through the CLI
(``python -m mlkit.training_contract ...``, exit status 0 or 1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkit.packaging import pack_model_dir

DEFAULT_PROGRAM = "train.py"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
#: The host name SageMaker gives the first (here: only) instance of a training cluster.
CURRENT_HOST = "algo-1"
#: Stand-in for the TF image's ``sagemaker_tensorflow_container.training:main`` (see :func:`container_main`).
FRAMEWORK_MODULE = "mlkit.training_contract:container_main"
#: Marks a base directory this runner created, so a rerun may clear it and nothing else is ever deleted.
JOB_MARKER = ".mlkit-training-job"
LOG_FILE = "training.log"
#: SageMaker's rules for training job and channel names.
JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
CHANNEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
#: SageMaker keeps the first 1024 characters of ``output/failure`` as the job's FailureReason.
FAILURE_REASON_LIMIT = 1024
_STOP_GRACE_S = 10.0


class TrainingJobError(RuntimeError):
    """The training job failed; ``reason`` is what SageMaker would report as its FailureReason.

    Attributes:
        reason: The failure reason (also written to ``output/failure``).
        log_path: The job's log file, when the job got far enough to write one.
    """

    def __init__(self, reason: str, *, log_path: Path | None = None) -> None:
        super().__init__(reason if log_path is None else f"{reason}\n(log: {log_path})")
        self.reason = reason
        self.log_path = log_path


@dataclass(frozen=True)
class JobLayout:
    """The SageMaker directory tree of one job under ``base_dir`` (the container's ``/opt/ml``)."""

    base_dir: Path

    @property
    def config_dir(self) -> Path:
        """``input/config``: hyperparameters.json, inputdataconfig.json, resourceconfig.json."""
        return self.base_dir / "input" / "config"

    @property
    def data_dir(self) -> Path:
        """``input/data``: one directory per channel."""
        return self.base_dir / "input" / "data"

    @property
    def model_dir(self) -> Path:
        """``model``: ``SM_MODEL_DIR``, tarred into ``model.tar.gz``."""
        return self.base_dir / "model"

    @property
    def output_dir(self) -> Path:
        """``output``: where ``success`` or ``failure`` is written."""
        return self.base_dir / "output"

    @property
    def output_data_dir(self) -> Path:
        """``output/data``: ``SM_OUTPUT_DATA_DIR``, tarred into ``output.tar.gz``."""
        return self.output_dir / "data"

    @property
    def code_dir(self) -> Path:
        """``code``: where the toolkit extracts ``sourcedir.tar.gz``."""
        return self.base_dir / "code"

    @property
    def failure_file(self) -> Path:
        """``output/failure``: the failure reason."""
        return self.output_dir / "failure"

    @property
    def log_path(self) -> Path:
        """The job's log (what CloudWatch Logs would hold)."""
        return self.base_dir / LOG_FILE

    def channel_dir(self, channel: str) -> Path:
        """``input/data/<channel>``: ``SM_CHANNEL_<CHANNEL>``."""
        return self.data_dir / channel


@dataclass(frozen=True)
class TrainingJobResult:
    """What a finished training job left behind.

    Attributes:
        job_name: The training job name.
        layout: The job's directory tree.
        model_tar: ``model.tar.gz`` (the packed ``SM_MODEL_DIR``).
        output_tar: ``output.tar.gz`` (the packed ``SM_OUTPUT_DATA_DIR``).
        output_dir: ``SM_OUTPUT_DATA_DIR`` itself, e.g. ``evaluation.json`` and ``test_predictions.csv``.
        evaluation: ``SM_MODEL_DIR/evaluation.json`` when the program wrote one, else empty.
        final_metrics: The last value of each metric definition found in the log.
        log_path: The job's log file.
        seconds: Wall-clock duration of the container run.
    """

    job_name: str
    layout: JobLayout
    model_tar: Path
    output_tar: Path
    output_dir: Path
    evaluation: dict[str, Any] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    log_path: Path | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (paths as strings)."""
        return {
            "job_name": self.job_name,
            "base_dir": str(self.layout.base_dir),
            "model_tar": str(self.model_tar),
            "output_tar": str(self.output_tar),
            "output_dir": str(self.output_dir),
            "evaluation": self.evaluation,
            "final_metrics": self.final_metrics,
            "log_path": str(self.log_path) if self.log_path else None,
            "seconds": self.seconds,
        }


def default_metric_definitions() -> list[dict[str, str]]:
    """Return the ``MetricDefinitions`` of the kit's ``train.py`` (from ``training.metrics``)."""
    from training.metrics import metric_definitions  # the one place that defines the METRIC lines

    definitions: list[dict[str, str]] = metric_definitions()
    return definitions


def run_training_job(
    *,
    job_name: str,
    source_tar: Path,
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, object],
    base_dir: Path,
    program: str = DEFAULT_PROGRAM,
    python: str = sys.executable,
    model_tar: Path | None = None,
    output_tar: Path | None = None,
    metric_definitions: Sequence[Mapping[str, str]] | None = None,
    input_data_config: Mapping[str, Mapping[str, Any]] | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    max_runtime_s: float | None = None,
    echo: bool | Callable[[str], None] = True,
) -> TrainingJobResult:
    """Run one training job through the real SageMaker training toolkit and pack its artifacts.

    Args:
        job_name: Training job name (SageMaker's naming rules apply).
        source_tar: ``sourcedir.tar.gz`` holding ``program`` (the ``sagemaker_submit_directory``).
        channels: Channel name -> local directory (or single file) copied into ``input/data/<name>``.
        hyperparameters: The job's hyperparameters. Strings are passed exactly as a CreateTrainingJob
            request would pass them; other values are JSON-encoded the way the SageMaker Python SDK does.
        base_dir: The job's ``/opt/ml``. Must be absent, empty, or a previous job directory of this runner
            (which is cleared first).
        program: The ``sagemaker_program``; a ``sagemaker_program`` hyperparameter takes precedence, as it
            does in the container.
        python: Interpreter running the toolkit and the program (needs ``sagemaker-training`` and this kit).
        model_tar: Where to write ``model.tar.gz`` (default ``base_dir/model.tar.gz``).
        output_tar: Where to write ``output.tar.gz`` (default ``base_dir/output.tar.gz``).
        metric_definitions: ``[{"Name", "Regex"}]`` applied to the log (default: ``train.py``'s metrics).
        input_data_config: Per-channel entries merged into ``inputdataconfig.json`` (e.g. ``ContentType``).
        instance_type: Reported in ``resourceconfig.json``.
        max_runtime_s: Stop the job after this many seconds (``StoppingCondition.MaxRuntimeInSeconds``).
        echo: Stream the job's log to stdout while it runs, or hand each line to this callable (the log
            file always gets every line).

    Returns:
        The artifacts, the evaluation and the final metrics.

    Raises:
        ValueError: For an invalid job name, channel name or program.
        TrainingJobError: When the job fails; ``output/failure`` then holds the same reason.
    """
    if not JOB_NAME_PATTERN.match(job_name):
        raise ValueError(f"invalid training job name {job_name!r} (SageMaker allows {JOB_NAME_PATTERN.pattern})")
    bad_channels = [name for name in channels if not CHANNEL_NAME_PATTERN.match(name)]
    if bad_channels:
        raise ValueError(f"invalid channel name(s) {bad_channels}")
    layout = JobLayout(Path(base_dir).resolve())
    _reset_base_dir(layout)
    started = time.monotonic()
    try:
        _prepare(
            layout,
            job_name=job_name,
            source_tar=Path(source_tar),
            channels=channels,
            hyperparameters=hyperparameters,
            program=program,
            input_data_config=input_data_config or {},
            instance_type=instance_type,
        )
    except (OSError, ValueError) as error:
        raise _fail(layout, f"ClientError: {error}", log_path=None) from None

    try:
        returncode, timed_out = _run_container(layout, job_name, python, max_runtime_s, echo)
    except OSError as error:  # the interpreter is missing or not executable
        raise _fail(layout, f"AlgorithmError: cannot start the training container: {error}", log_path=None) from None
    seconds = round(time.monotonic() - started, 3)
    if timed_out:
        raise _fail(layout, f"MaxRuntimeExceeded: the job ran longer than {max_runtime_s} s", log_path=layout.log_path)
    if returncode != 0 or layout.failure_file.exists():
        reason = _read_failure(layout) or f"AlgorithmError: the training container exited with code {returncode}"
        raise _fail(layout, reason, log_path=layout.log_path)

    model_tar = Path(model_tar) if model_tar else layout.base_dir / "model.tar.gz"
    output_tar = Path(output_tar) if output_tar else layout.base_dir / "output.tar.gz"
    pack_model_dir(layout.model_dir, model_tar)
    pack_model_dir(layout.output_data_dir, output_tar)  # same layout rule: paths relative to the directory
    log_text = layout.log_path.read_text(encoding="utf-8", errors="replace")
    definitions = default_metric_definitions() if metric_definitions is None else metric_definitions
    return TrainingJobResult(
        job_name=job_name,
        layout=layout,
        model_tar=model_tar,
        output_tar=output_tar,
        output_dir=layout.output_data_dir,
        evaluation=_read_json_object(layout.model_dir / "evaluation.json"),
        final_metrics=parse_metrics(log_text, definitions),
        log_path=layout.log_path,
        seconds=seconds,
    )


def parse_metrics(log_text: str, definitions: Sequence[Mapping[str, str]]) -> dict[str, float]:
    """Apply ``MetricDefinitions`` to a job log the way SageMaker does; the last match of each wins.

    Args:
        log_text: The job's log.
        definitions: ``[{"Name": ..., "Regex": ...}]``; the regex's first group is the value.

    Returns:
        Metric name -> last value found (names without a parseable match are left out).
    """
    metrics: dict[str, float] = {}
    for definition in definitions:
        for match in re.finditer(definition["Regex"], log_text):
            try:
                metrics[definition["Name"]] = float(match.group(1))
            except (IndexError, ValueError):
                continue
    return metrics


def hyperparameter_strings(hyperparameters: Mapping[str, object]) -> dict[str, str]:
    """Return hyperparameters as ``hyperparameters.json`` holds them: every value a string.

    Strings stay as they are (what a CreateTrainingJob request carries); other values are JSON-encoded,
    as the SageMaker Python SDK does, and the toolkit decodes them again.
    """
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in hyperparameters.items()}


def container_environment(layout: JobLayout, job_name: str) -> dict[str, str]:
    """Return the environment the training container starts with (before the toolkit adds ``SM_*``).

    The caller's environment is kept (PATH, HOME, TF settings) minus anything SageMaker-specific that
    would leak into the job; the toolkit itself derives every ``SM_*`` variable from the config files.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "TRAINING_JOB_"))}
    env.pop("PYTHONPATH", None)  # the container starts without one; the toolkit sets it for the program
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(layout.base_dir),
            "TRAINING_JOB_NAME": job_name,
            "SAGEMAKER_TRAINING_MODULE": FRAMEWORK_MODULE,
            "PYTHONUNBUFFERED": "1",  # as in the SageMaker images: log lines arrive as they are written
            # The toolkit otherwise waits (up to 15 min) for the cluster's host names (algo-1...) to resolve
            # in DNS; this is its own switch for running without the SageMaker network.
            "SM_STUDIO_LOCAL_MODE": "true",
        }
    )
    return env


def container_main() -> None:
    """Framework entry point run by the toolkit's trainer inside the job (``SAGEMAKER_TRAINING_MODULE``).

    Does what the TF image's training module does on a single host: build the toolkit environment and
    run the user program through the toolkit with ``capture_error=True``, so a failing program's stderr
    becomes the failure reason. Imports the toolkit lazily: importing ``sagemaker_training.environment``
    reads (and may create) the base directory, which must only happen inside the job.
    """
    from sagemaker_training import entry_point, environment, runner

    env = environment.Environment()
    entry_point.run(
        uri=env.module_dir,
        user_entry_point=env.user_entry_point,
        args=env.to_cmd_args(),
        env_vars=env.to_env_vars(),
        capture_error=True,
        runner_type=runner.ProcessRunnerType,
    )
    _warn_if_not_servable(Path(env.model_dir))


def _warn_if_not_servable(model_dir: Path) -> None:
    """Warn, as the TF image does, when the model directory holds no SavedModel under a numeric version."""
    versions = [p.parent.name for p in model_dir.glob("*/saved_model.pb")]
    if not any(v.isdigit() and int(v) > 0 for v in versions):
        print(
            f"WARNING: {model_dir} holds no <positive integer>/saved_model.pb; "
            "the TensorFlow Serving container will not serve this model",
            file=sys.stderr,
            flush=True,
        )


def _reset_base_dir(layout: JobLayout) -> None:
    base = layout.base_dir
    if base.exists():
        if not base.is_dir():
            raise ValueError(f"base directory {base} is a file")
        if any(base.iterdir()):
            if not (base / JOB_MARKER).exists():
                raise ValueError(f"base directory {base} is not empty and was not created by this runner")
            shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    (base / JOB_MARKER).write_text("created by mlkit.training_contract; cleared on the next run\n", encoding="utf-8")


def _prepare(
    layout: JobLayout,
    *,
    job_name: str,
    source_tar: Path,
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, object],
    program: str,
    input_data_config: Mapping[str, Mapping[str, Any]],
    instance_type: str,
) -> None:
    for directory in (layout.config_dir, layout.data_dir, layout.model_dir, layout.output_data_dir, layout.code_dir):
        directory.mkdir(parents=True, exist_ok=True)
    if not source_tar.is_file():
        raise FileNotFoundError(f"source archive {source_tar} does not exist")
    data_config: dict[str, dict[str, Any]] = {}
    for name, channel_source in channels.items():
        target = layout.channel_dir(name)
        source = Path(channel_source)
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)
        else:
            raise FileNotFoundError(f"channel {name!r}: {source} does not exist")
        data_config[name] = {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
            **dict(input_data_config.get(name, {})),
        }
    values = hyperparameter_strings(hyperparameters)
    # The framework's own entries, JSON-encoded as the SageMaker Python SDK writes them. The platform has
    # already fetched the S3 object of sagemaker_submit_directory; the toolkit extracts a local tar.gz alike.
    values.setdefault("sagemaker_program", json.dumps(program))
    values["sagemaker_job_name"] = json.dumps(job_name)
    values["sagemaker_submit_directory"] = json.dumps(str(source_tar.resolve()))
    _write_json(layout.config_dir / "hyperparameters.json", values)
    _write_json(layout.config_dir / "inputdataconfig.json", data_config)
    _write_json(
        layout.config_dir / "resourceconfig.json",
        {
            "current_host": CURRENT_HOST,
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": [CURRENT_HOST],
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": [CURRENT_HOST]}
            ],
            "network_interface_name": "eth0",
        },
    )


def _run_container(
    layout: JobLayout, job_name: str, python: str, max_runtime_s: float | None, echo: bool | Callable[[str], None]
) -> tuple[int, bool]:
    """Run the toolkit's trainer; tee its output to the log. Returns ``(exit code, timed out)``."""
    command = [python, "-m", "sagemaker_training.cli.train"]
    timed_out = threading.Event()
    with layout.log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=layout.base_dir,
            env=container_environment(layout, job_name),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # its own process group: stopping the job stops the program too
        )

        def stop() -> None:
            timed_out.set()
            _stop(process)

        timer = threading.Timer(max_runtime_s, stop) if max_runtime_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            for line in process.stdout or ():
                log.write(line)
                log.flush()
                if callable(echo):
                    echo(line)
                elif echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            returncode = process.wait()
        except BaseException:
            _stop(process)
            raise
        finally:
            if timer:
                timer.cancel()
    return returncode, timed_out.is_set()


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop the job's process group: SIGTERM, then SIGKILL after a grace period (as SageMaker does)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_failure(layout: JobLayout) -> str:
    if not layout.failure_file.exists():
        return ""
    return layout.failure_file.read_text(encoding="utf-8", errors="replace").strip()


def _fail(layout: JobLayout, reason: str, *, log_path: Path | None) -> TrainingJobError:
    """Record ``reason`` in ``output/failure`` (unless the container already did) and build the error."""
    layout.output_dir.mkdir(parents=True, exist_ok=True)
    if not layout.failure_file.exists():
        layout.failure_file.write_text(reason[:FAILURE_REASON_LIMIT] + "\n", encoding="utf-8")
    return TrainingJobError(reason, log_path=log_path)


def _read_json_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# ---- command line ------------------------------------------------------------------------------------


def _channel(text: str) -> tuple[str, Path]:
    name, separator, directory = text.partition("=")
    if not separator or not name or not directory:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(directory)


def _json_object(text: str) -> dict[str, Any]:
    raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _json_list(text: str) -> list[dict[str, str]]:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(d, dict) and {"Name", "Regex"} <= d.keys() for d in value):
        raise argparse.ArgumentTypeError('expected [{"Name": ..., "Regex": ...}, ...]')
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser of ``python -m mlkit.training_contract``."""
    parser = argparse.ArgumentParser(
        prog="python -m mlkit.training_contract",
        description="Run a SageMaker training job locally with the real training toolkit.",
    )
    parser.add_argument("--job-name", required=True)
    parser.add_argument("--source", required=True, type=Path, help="sourcedir.tar.gz")
    parser.add_argument(
        "--channel", action="append", type=_channel, default=[], metavar="NAME=DIR", help="repeat per channel"
    )
    parser.add_argument("--hyperparameters", type=_json_object, default={}, help="JSON object, or @file holding one")
    parser.add_argument("--base-dir", required=True, type=Path, help="the job's /opt/ml")
    parser.add_argument("--model-tar", type=Path, help="where to write model.tar.gz (default BASE/model.tar.gz)")
    parser.add_argument("--output-tar", type=Path, help="where to write output.tar.gz (default BASE/output.tar.gz)")
    parser.add_argument("--program", default=DEFAULT_PROGRAM, help="sagemaker_program")
    parser.add_argument("--metric-definitions", type=_json_list, help='JSON [{"Name", "Regex"}] (default train.py\'s)')
    parser.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    parser.add_argument("--max-runtime", type=float, help="seconds before the job is stopped")
    parser.add_argument("--result-json", type=Path, help="write the job result (paths, evaluation, metrics) here")
    parser.add_argument("--quiet", action="store_true", help="do not echo the job log (it is still written)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return 0 when the job completed and 1 when it failed."""
    args = build_parser().parse_args(argv)
    try:
        result = run_training_job(
            job_name=args.job_name,
            source_tar=args.source,
            channels=dict(args.channel),
            hyperparameters=args.hyperparameters,
            base_dir=args.base_dir,
            program=args.program,
            model_tar=args.model_tar,
            output_tar=args.output_tar,
            metric_definitions=args.metric_definitions,
            instance_type=args.instance_type,
            max_runtime_s=args.max_runtime,
            echo=not args.quiet,
        )
    except (TrainingJobError, ValueError) as error:
        reason = error.reason if isinstance(error, TrainingJobError) else str(error)
        print(f"training job {args.job_name} failed: {error}", file=sys.stderr)
        if args.result_json:
            _write_json(args.result_json, {"job_name": args.job_name, "status": "Failed", "failure_reason": reason})
        return 1
    if args.result_json:
        _write_json(args.result_json, {"status": "Completed", **result.to_dict()})
    print(f"training job {args.job_name} completed: {result.model_tar}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
