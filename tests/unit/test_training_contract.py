"""The local training-contract runner (mlkit/training_contract.py) against the real sagemaker-training toolkit."""

from __future__ import annotations

import json
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from training_helpers import write_channels

from mlkit import training_contract as tc
from mlkit.packaging import build_sourcedir, write_tar_gz
from mlkit.schema import DatasetSchema
from training.metrics import FINAL_METRIC_NAMES

pytestmark = pytest.mark.unit

PROBE = """
import json, os, sys
from pathlib import Path

out = Path(os.environ["SM_OUTPUT_DATA_DIR"])
out.mkdir(parents=True, exist_ok=True)
config = Path(os.environ["SM_INPUT_CONFIG_DIR"])
probe = {
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_JOB_", "SAGEMAKER_"))},
    "config": {p.name: json.loads(p.read_text()) for p in config.glob("*.json")},
    "channels": {
        name: sorted(os.listdir(os.environ["SM_CHANNEL_" + name.upper()]))
        for name in json.loads(os.environ["SM_CHANNELS"])
    },
}
(out / "probe.json").write_text(json.dumps(probe))
version = Path(os.environ["SM_MODEL_DIR"]) / "1"
version.mkdir()
(version / "saved_model.pb").write_bytes(b"not really a model")
print("probe ran")
print("METRIC test_f1=0.5")
print("METRIC test_f1=0.75")
"""

FAILING = """
import sys
print("about to fail")
raise ValueError("the channel is broken")
"""


@pytest.fixture(scope="module")
def probe_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    (root / "train.py").write_text(textwrap.dedent(PROBE))
    (root / "fail.py").write_text(textwrap.dedent(FAILING))
    return write_tar_gz(root / "sourcedir.tar.gz", [("train.py", root / "train.py"), ("fail.py", root / "fail.py")])


@pytest.fixture(scope="module")
def probe_run(
    tmp_path_factory: pytest.TempPathFactory, probe_source: Path, schema: DatasetSchema
) -> tuple[tc.TrainingJobResult, dict[str, Any]]:
    root = tmp_path_factory.mktemp("probe-job")
    channels = write_channels(root / "data", schema, {"train": 6, "validation": 3, "test": 3})
    result = tc.run_training_job(
        job_name="probe-job-1",
        source_tar=probe_source,
        channels=channels,
        hyperparameters={"epochs": 3, "hidden-units": "16,8", "dropout": 0.25, "layers": [4, 2]},
        base_dir=root / "opt_ml",
        echo=False,
    )
    probe = json.loads((result.output_dir / "probe.json").read_text())
    return result, probe


def test_channels_and_directories_as_in_the_container(probe_run: tuple[tc.TrainingJobResult, dict[str, Any]]) -> None:
    result, probe = probe_run
    base = result.layout.base_dir
    env = probe["env"]
    for name in ("train", "validation", "test"):
        assert env[f"SM_CHANNEL_{name.upper()}"] == str(base / "input" / "data" / name)
    assert json.loads(env["SM_CHANNELS"]) == ["test", "train", "validation"]
    assert probe["channels"]["train"] == ["part-00000-of-00002.csv", "part-00001-of-00002.csv"]
    assert env["SM_MODEL_DIR"] == str(base / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(base / "output" / "data")
    assert env["SM_INPUT_CONFIG_DIR"] == str(base / "input" / "config")
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["TRAINING_JOB_NAME"] == "probe-job-1"
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    # The toolkit extracted sourcedir.tar.gz into code/ and ran the program from there.
    assert probe["cwd"] == str(base / "code")
    assert (base / "code" / "train.py").is_file()


def test_hyperparameters_as_flags_sm_hps_and_config(probe_run: tuple[tc.TrainingJobResult, dict[str, Any]]) -> None:
    _, probe = probe_run
    argv = probe["argv"]
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    assert flags == {"--dropout": "0.25", "--epochs": "3", "--hidden-units": "16,8", "--layers": "[4, 2]"}
    # SM_HPS holds the decoded values, without the framework's sagemaker_* entries.
    assert json.loads(probe["env"]["SM_HPS"]) == {
        "epochs": 3,
        "hidden-units": "16,8",
        "dropout": 0.25,
        "layers": [4, 2],
    }
    assert probe["env"]["SM_HP_EPOCHS"] == "3"
    config = probe["config"]
    hyperparameters = config["hyperparameters.json"]
    assert all(isinstance(v, str) for v in hyperparameters.values())  # as SageMaker writes them
    assert hyperparameters["epochs"] == "3"
    assert hyperparameters["hidden-units"] == "16,8"
    assert json.loads(hyperparameters["sagemaker_program"]) == "train.py"
    assert json.loads(hyperparameters["sagemaker_job_name"]) == "probe-job-1"
    assert set(config["inputdataconfig.json"]) == {"train", "validation", "test"}
    assert config["inputdataconfig.json"]["train"]["TrainingInputMode"] == "File"
    resource = config["resourceconfig.json"]
    assert (resource["current_host"], resource["hosts"]) == ("algo-1", ["algo-1"])
    assert resource["current_instance_type"] == tc.DEFAULT_INSTANCE_TYPE


def test_artifacts_log_and_metrics(probe_run: tuple[tc.TrainingJobResult, dict[str, Any]]) -> None:
    result, _ = probe_run
    with tarfile.open(result.model_tar) as archive:
        assert archive.getnames() == ["1/saved_model.pb"]  # relative to SM_MODEL_DIR, as SageMaker packs it
    with tarfile.open(result.output_tar) as archive:
        assert archive.getnames() == ["probe.json"]
    assert (result.layout.output_dir / "success").exists()
    assert not result.layout.failure_file.exists()
    assert "probe ran" in result.log_path.read_text()
    # SageMaker's MetricDefinitions semantics: the last value of each metric in the log.
    assert result.final_metrics == {"test_f1": 0.75}
    assert result.evaluation == {}  # the probe writes no evaluation.json
    assert result.to_dict()["model_tar"] == str(result.model_tar)


def test_failing_program_writes_the_failure_reason(
    tmp_path: Path, probe_source: Path, schema: DatasetSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    channels = write_channels(tmp_path / "data", schema, {"train": 4})
    base = tmp_path / "opt_ml"
    with pytest.raises(tc.TrainingJobError) as raised:
        tc.run_training_job(
            job_name="failing-job",
            source_tar=probe_source,
            channels=channels,
            hyperparameters={},
            base_dir=base,
            program="fail.py",
        )
    reason = raised.value.reason
    # The toolkit scrapes stderr in chunks, so the traceback's last line may arrive split in two.
    assert "ExecuteUserScriptError" in reason
    assert "ValueError" in reason
    assert "the channel is broken" in reason
    assert "the channel is broken" in (base / "output" / "failure").read_text()
    assert raised.value.log_path == base / tc.LOG_FILE
    assert "about to fail" in capsys.readouterr().out  # streamed while it ran
    assert not (base / "model.tar.gz").exists()


def test_missing_channel_is_a_client_error_and_the_cli_exits_1(
    tmp_path: Path, probe_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "opt_ml"
    result_json = tmp_path / "result.json"
    code = tc.main(
        [
            *("--job-name", "no-data", "--source", str(probe_source), "--base-dir", str(base)),
            *("--channel", f"train={tmp_path / 'absent'}", "--result-json", str(result_json)),
        ]
    )
    assert code == 1
    assert "ClientError" in (base / "output" / "failure").read_text()
    assert json.loads(result_json.read_text())["status"] == "Failed"
    assert "no-data failed" in capsys.readouterr().err


def test_max_runtime_stops_the_job(tmp_path: Path, probe_source: Path) -> None:
    with pytest.raises(tc.TrainingJobError, match="MaxRuntimeExceeded"):
        tc.run_training_job(
            job_name="slow-job",
            source_tar=probe_source,
            channels={},
            hyperparameters={},
            base_dir=tmp_path / "opt_ml",
            max_runtime_s=0.5,
            echo=False,
        )
    assert "MaxRuntimeExceeded" in (tmp_path / "opt_ml" / "output" / "failure").read_text()


def test_base_dir_is_only_cleared_when_it_is_a_job_dir(tmp_path: Path, probe_source: Path) -> None:
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        tc.run_training_job(job_name="j", source_tar=probe_source, channels={}, hyperparameters={}, base_dir=foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
    # A previous job directory of the runner is cleared (the toolkit would not re-extract a non-empty code/).
    job = tmp_path / "job"
    for attempt in range(2):
        with pytest.raises(tc.TrainingJobError):
            tc.run_training_job(
                job_name="j", source_tar=tmp_path / "missing.tar.gz", channels={}, hyperparameters={}, base_dir=job
            )
        (job / "code" / f"stale-{attempt}.py").write_text("")
    assert sorted(p.name for p in (job / "code").iterdir()) == ["stale-1.py"]


@pytest.mark.parametrize(
    ("job_name", "channels", "message"),
    [("bad_name!", {}, "job name"), ("-lead", {}, "job name"), ("ok", {"bad/channel": Path(".")}, "channel name")],
)
def test_invalid_names_are_rejected(job_name: str, channels: dict[str, Path], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        tc.run_training_job(
            job_name=job_name, source_tar=tmp_path, channels=channels, hyperparameters={}, base_dir=tmp_path / "b"
        )


def test_hyperparameter_strings_follow_the_api_and_the_sdk() -> None:
    assert tc.hyperparameter_strings({"a": "raw text", "b": 3, "c": [1, 2], "d": True, "e": '"quoted"'}) == {
        "a": "raw text",
        "b": "3",
        "c": "[1, 2]",
        "d": "true",
        "e": '"quoted"',
    }


def test_parse_metrics_applies_each_definition() -> None:
    definitions = [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}, {"Name": "broken", "Regex": r"broken=(\w+)"}]
    log = "loss=0.5\nbroken=abc\nloss=0.25\n"
    assert tc.parse_metrics(log, definitions) == {"loss": 0.25}


def test_quick_training_job_through_the_cli(tmp_path: Path, schema: DatasetSchema) -> None:
    source = build_sourcedir(tmp_path / "artifacts")
    channels = write_channels(tmp_path / "curated", schema)
    model_tar = tmp_path / "artifacts" / "model.tar.gz"
    result_json = tmp_path / "result.json"
    hyperparameters = {"epochs": 3, "hidden-units": [16, 8], "batch-size": 64, "verbose": 0}
    code = tc.main(
        [
            *("--job-name", "quick-1", "--source", str(source), "--base-dir", str(tmp_path / "opt_ml")),
            *(arg for name, path in channels.items() for arg in ("--channel", f"{name}={path}")),
            *("--hyperparameters", json.dumps(hyperparameters), "--model-tar", str(model_tar)),
            *("--result-json", str(result_json), "--quiet"),
        ]
    )
    assert code == 0, (tmp_path / "opt_ml" / tc.LOG_FILE).read_text()[-5000:]
    with tarfile.open(model_tar) as archive:
        names = set(archive.getnames())
    versions = {name.split("/")[0] for name in names if name[0].isdigit()}
    assert versions == {"1"}
    assert {"1/saved_model.pb", "1/variables/variables.index", "evaluation.json"} <= names
    assert any(name.startswith("1/variables/variables.data-") for name in names)
    assert {"code/inference.py", "code/schema.json", "code/lib/mlkit/__init__.py", "code/lib/mlkit/schema.py"} <= names
    result = json.loads(result_json.read_text())
    assert result["status"] == "Completed"
    evaluation = result["evaluation"]
    assert evaluation["rows"] == {"train": 800, "validation": 300, "test": 300}
    assert set(result["final_metrics"]) == set(FINAL_METRIC_NAMES)
    assert result["final_metrics"]["test_f1"] == pytest.approx(evaluation["metrics"]["f1"], abs=1e-6)
    assert result["final_metrics"]["threshold"] == pytest.approx(evaluation["threshold"], abs=1e-6)
    output_dir = Path(result["output_dir"])
    assert (output_dir / "test_predictions.csv").is_file()
    assert (output_dir / "evaluation.json").is_file()
    log = (tmp_path / "opt_ml" / tc.LOG_FILE).read_text()
    # train.py ran from the extracted sourcedir, not from this checkout.
    assert f"training package: {tmp_path / 'opt_ml' / 'code' / 'training'}" in log


def test_a_missing_interpreter_is_a_job_failure(tmp_path: Path, probe_source: Path) -> None:
    with pytest.raises(tc.TrainingJobError, match="cannot start the training container"):
        tc.run_training_job(
            job_name="no-python",
            source_tar=probe_source,
            channels={},
            hyperparameters={},
            base_dir=tmp_path / "opt_ml",
            python=str(tmp_path / "no-such-python"),
        )
    assert (tmp_path / "opt_ml" / "output" / "failure").exists()
