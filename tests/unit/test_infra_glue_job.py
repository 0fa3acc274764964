"""The Glue preprocessing job: Glue 5.0, the packaged entry script and libraries, and that they import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from infra_helpers import bare_stack, synthesize

from infra import assets
from infra.config import GLUE_PYTHON_MODULES, GlueSettings
from infra.constructs.glue_job import GlueJobBuckets, PreprocessingJob
from infra.pins import glue_python_modules

pytestmark = pytest.mark.unit

# Imports the entry script exactly as Glue does (a file, not a package) with only the zip on the
# path for the project's packages, and checks every project module came from the zip.
IMPORT_CHECK = """
import importlib.util, sys
archive, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, archive)
spec = importlib.util.spec_from_file_location("preprocess_job", script)
job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)
import glue_jobs.preprocess.pipeline, mlkit.schema
assert callable(job.main)
outside = {
    name: getattr(module, "__file__", None)
    for name, module in sys.modules.items()
    if name.split(".")[0] in ("glue_jobs", "mlkit", "training", "inference")
    and not str(getattr(module, "__file__", archive) or archive).startswith(archive)
}
assert not outside, outside
glue_jobs.preprocess.pipeline.load_schema(None)  # the packaged dataset configuration, read from the zip
print("imported", sorted(n for n in sys.modules if n.startswith("glue_jobs")))
"""


def _job(stack_name: str = "Test") -> tuple[Template, PreprocessingJob, dict[str, str]]:
    """The job in a bare stack; also the logical ids of its ``raw``, ``curated`` and ``temp`` buckets."""
    stack = bare_stack(stack_name)
    key = kms.Key(stack, "Key")
    raw, curated, temp = (s3.Bucket(stack, name, encryption_key=key) for name in ("Raw", "Curated", "Temp"))
    job = PreprocessingJob(
        stack,
        "Job",
        job_name="mlkit-test-preprocess",
        script=assets.glue_entry_script(),
        libraries=assets.glue_libraries(),
        python_modules=glue_python_modules(GLUE_PYTHON_MODULES),
        buckets=GlueJobBuckets(
            raw=raw,
            curated=curated,
            temp=temp,
            temp_prefix="glue-temp/",
            default_input_key="incoming/data.csv",
            default_output_prefix="runs/manual/",
            output_prefix="runs/",
        ),
        encryption_key=key,
        settings=GlueSettings(),
        log_retention=30,
        removal_policy=RemovalPolicy.DESTROY,
    )
    bucket_ids = {
        name: stack.resolve(stack.get_logical_id(bucket.node.default_child))
        for name, bucket in (("raw", raw), ("curated", curated), ("temp", temp))
    }
    return Template.from_stack(stack), job, bucket_ids


@pytest.fixture(scope="module")
def built() -> tuple[Template, PreprocessingJob, dict[str, str]]:
    return _job()


@pytest.fixture(scope="module")
def job_template(built: tuple[Template, PreprocessingJob, dict[str, str]]) -> Template:
    return built[0]


def test_job_is_glue_5_python_etl_running_the_packaged_script(job_template: Template) -> None:
    job_template.resource_count_is("AWS::Glue::Job", 1)
    job_template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "Name": "mlkit-test-preprocess",
            "GlueVersion": "5.0",
            "Command": {
                "Name": "glueetl",
                "PythonVersion": "3",
                "ScriptLocation": {
                    "Fn::Sub": Match.string_like_regexp(r"^s3://cdk-[a-z0-9]+-assets-.*/[0-9a-f]{64}\.py$")
                },
            },
            "WorkerType": "G.1X",
            "NumberOfWorkers": 2,
            "MaxRetries": 0,
            "ExecutionProperty": {"MaxConcurrentRuns": 1},
            "SecurityConfiguration": Match.any_value(),
        },
    )


def test_default_arguments_point_at_the_assets_and_buckets(job_template: Template) -> None:
    job_template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "DefaultArguments": Match.object_like(
                {
                    "--extra-py-files": {"Fn::Sub": Match.string_like_regexp(r"/[0-9a-f]{64}\.zip$")},
                    "--additional-python-modules": glue_python_modules(GLUE_PYTHON_MODULES),
                    "--input": Match.any_value(),
                    "--output": Match.any_value(),
                    "--TempDir": Match.any_value(),
                    "--enable-metrics": "true",
                    "--enable-observability-metrics": "true",
                    "--enable-continuous-cloudwatch-log": "true",
                    "--continuous-log-logGroup": "/aws-glue/jobs/mlkit-test-preprocess",
                }
            )
        },
    )


def test_logs_and_bookmarks_are_kms_encrypted(job_template: Template) -> None:
    job_template.has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": Match.any_value()},
                "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": Match.any_value()},
                "S3Encryptions": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": Match.any_value()}],
            }
        },
    )
    job_template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/aws-glue/jobs/mlkit-test-preprocess", "RetentionInDays": 30}
    )


def test_role_may_read_the_assets_and_use_its_buckets_only(job_template: Template) -> None:
    policies = job_template.find_resources("AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    resources = [r for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert "*" in resources  # only cloudwatch:PutMetricData, pinned to the Glue namespace
    star = [s for s in statements if s["Resource"] == "*"]
    assert star == [
        {
            "Action": "cloudwatch:PutMetricData",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "GlueMetrics",
        }
    ]
    (code,) = [s for s in statements if s.get("Sid") == "ReadCodeAssets"]
    assert code["Action"] == "s3:GetObject"
    objects = [json.dumps(r) for r in code["Resource"]]  # exactly the two objects, not the assets bucket
    assert len(objects) == 2
    suffixes = sorted(re.search(r"/[0-9a-f]{64}(\.\w+)\"", o).group(1) for o in objects)  # type: ignore[union-attr]
    assert suffixes == [".py", ".zip"]


def test_role_reads_any_raw_key_but_writes_only_the_runs_prefix_and_temp_dir(
    built: tuple[Template, PreprocessingJob, dict[str, str]],
) -> None:
    template, _, ids = built
    statements = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]

    def objects_of(bucket: str, writable: bool) -> set[str]:
        """The object patterns of ``bucket`` that statements grant reading (or writing) of."""
        found = set()
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if writable != any(a in ("s3:PutObject", "s3:DeleteObject*") for a in actions):
                continue
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ):
                join = resource.get("Fn::Join", ["", []])[1] if isinstance(resource, dict) else []
                if join and join[0] == {"Fn::GetAtt": [ids[bucket], "Arn"]}:
                    found.add("".join(part for part in join[1:] if isinstance(part, str)))
        return found

    assert objects_of("raw", writable=False) == {"/*"}
    assert objects_of("raw", writable=True) == set()
    assert objects_of("curated", writable=True) == {"/runs/*"}
    assert objects_of("temp", writable=True) == {"/glue-temp/*"}


def test_a_default_output_outside_the_writable_prefix_is_rejected() -> None:
    stack = bare_stack()
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(ValueError, match="lies outside output_prefix 'runs/'"):
        GlueJobBuckets(bucket, bucket, bucket, "t/", "in.csv", "elsewhere/", "runs/")


def test_a_missing_or_wrong_script_is_rejected(tmp_path: Path) -> None:
    stack = bare_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Bucket")
    buckets = GlueJobBuckets(bucket, bucket, bucket, "t/", "in.csv", "out/", "out/")
    kwargs = {
        "job_name": "j",
        "python_modules": "x==1",
        "buckets": buckets,
        "encryption_key": key,
        "settings": GlueSettings(),
        "log_retention": 7,
        "removal_policy": RemovalPolicy.DESTROY,
    }
    with pytest.raises(ValueError, match=r"entry script must be an existing \.py file"):
        PreprocessingJob(stack, "A", script=tmp_path / "missing.py", libraries=assets.glue_libraries(), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"--extra-py-files must be an existing \.zip"):
        PreprocessingJob(stack, "B", script=assets.glue_entry_script(), libraries=assets.training_sourcedir(), **kwargs)  # type: ignore[arg-type]


def _staged_asset(outdir: Path, s3_url: dict[str, str]) -> Path:
    digest = re.search(r"/([0-9a-f]{64})\.\w+$", s3_url["Fn::Sub"])
    assert digest, s3_url
    (staged,) = outdir.glob(f"asset.{digest.group(1)}*")
    return staged


def test_the_deployed_job_imports_its_packaged_libraries(tmp_path: Path) -> None:
    """Acceptance: the job's script and --extra-py-files, as synthesised, import from the zip alone."""
    synthesized = synthesize("dev")
    resources = synthesized.template_json("preprocessing")["Resources"].values()
    (job,) = [r for r in resources if r["Type"] == "AWS::Glue::Job"]
    properties = job["Properties"]
    script = _staged_asset(synthesized.outdir, properties["Command"]["ScriptLocation"])
    archive = _staged_asset(synthesized.outdir, properties["DefaultArguments"]["--extra-py-files"])
    assert script.read_bytes() == assets.GLUE_ENTRY_SCRIPT.read_bytes()
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    assert {"glue_jobs/__init__.py", "glue_jobs/preprocess/__init__.py", "mlkit/schema.py"} <= names
    result = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_CHECK, str(archive), str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "glue_jobs.preprocess.pipeline" in result.stdout
