"""The preprocessing job on s3:// paths (an in-process moto S3 server) with a non-AI4I schema.

This is what the LocalStack runs rely on: the endpoint comes from ``AWS_ENDPOINT_URL`` alone, and the
schema is configuration, so a dataset with other columns, a string id and other fractions just works.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from apache_beam.io.filesystems import FileSystems
from moto.server import ThreadedMotoServer

from glue_jobs.preprocess import files
from glue_jobs.preprocess.pipeline import pipeline_options, run

pytestmark = pytest.mark.unit

SCHEMA = {
    "name": "pumps",
    "id_column": "pump_id",
    "label": "failed",
    "columns": [
        {"name": "site", "kind": "categorical", "categories": ["north", "south"], "feature": True},
        {"name": "pump_id", "kind": "string"},
        {"name": "pressure_bar", "kind": "numeric", "min": 0.0, "max": 50.0, "feature": True},
        {"name": "failed", "kind": "binary"},
    ],
    "split": {"train": 0.6, "validation": 0.2, "test": 0.2, "salt": "pumps-v1"},
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield boto3.client("s3")
    finally:
        server.stop()


def test_s3_paths_and_a_custom_schema(s3: Any) -> None:
    rng = random.Random(5)
    rows = [
        f"{rng.choice(['north', 'south'])},P{index:04d},{rng.uniform(1, 40):.2f},{int(rng.random() < 0.25)}"
        for index in range(120)
    ]
    bad = ["north,P9000,99.5,0", rows[10]]  # above the plausible maximum; a duplicate id
    body = "site,pump_id,pressure_bar,failed\n" + "\n".join(rows + bad) + "\n"
    s3.create_bucket(Bucket="raw")
    s3.put_object(Bucket="raw", Key="in/pumps.csv", Body=body.encode())
    s3.put_object(Bucket="raw", Key="config/pumps.json", Body=json.dumps(SCHEMA).encode())

    summary = run(
        ["--input", "s3://raw/in/pumps.csv", "--output", "s3://raw/curated/", "--schema", "s3://raw/config/pumps.json"],
        echo=lambda _line: None,
    )

    assert (summary["read"], summary["accepted"], summary["rejected"], summary["duplicates"]) == (122, 120, 1, 1)
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="raw", Prefix="curated/")["Contents"]}
    assert keys == {
        "curated/train/part-00000-of-00001.csv",
        "curated/validation/part-00000-of-00001.csv",
        "curated/test/part-00000-of-00001.csv",
        "curated/rejected/rejected-00000-of-00001.jsonl",
        "curated/baseline/statistics.json",
        "curated/summary.json",
    }

    def text(key: str) -> str:
        return str(s3.get_object(Bucket="raw", Key=f"curated/{key}")["Body"].read().decode())

    train = text("train/part-00000-of-00001.csv").splitlines()
    assert train[0] == "site,pump_id,pressure_bar,failed"  # curated columns in schema order
    assert [line.split(",")[1] for line in train[1:]] == sorted(line.split(",")[1] for line in train[1:])
    rejected = [json.loads(line) for line in text("rejected/rejected-00000-of-00001.jsonl").splitlines()]
    assert rejected == [
        {
            "line": 122,
            "reason": "'pressure_bar'=99.5 is above the plausible maximum 50",
            "raw": bad[0],
            "kind": "invalid",
        },
        {"line": 123, "reason": "duplicate pump_id P0010 (first seen on line 12)", "raw": bad[1], "kind": "duplicate"},
    ]
    statistics = json.loads(text("baseline/statistics.json"))
    assert set(statistics["numeric_features"]) == {"pressure_bar"}
    assert set(statistics["categorical_features"]["site"]["frequencies"]) == {"north", "south"}
    assert json.loads(text("summary.json")) == summary


def test_empty_and_small_files_on_s3(s3: Any) -> None:
    # Beam's S3 writer cannot create an empty object (a multipart upload with no part); the job's writer can.
    s3.create_bucket(Bucket="out")
    FileSystems.set_options(pipeline_options([]))
    assert files.write_text("s3://out/rejected/none.jsonl", "") == "s3://out/rejected/none.jsonl"
    assert files.write_text("s3://out/summary.json", "{}\n") == "s3://out/summary.json"
    assert s3.get_object(Bucket="out", Key="rejected/none.jsonl")["Body"].read() == b""
    assert files.read_text("s3://out/summary.json") == "{}\n"
    with pytest.raises(files.InputError, match=r"file not found: s3://out/absent\.json"):
        files.read_text("s3://out/absent.json")
