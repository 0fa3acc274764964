"""The preprocessing job end to end: the real AI4I file, injected bad rows, and the Glue entry script."""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glue_jobs import preprocess_job
from glue_jobs.preprocess.pipeline import (
    RUNNER,
    PreprocessError,
    check_counts,
    check_positives,
    pipeline_options,
    run,
)
from mlkit.packaging import PROJECT_ROOT, build_glue_libs
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.unit

GLUE_ARGS = [
    "--JOB_NAME",
    "preprocess",
    "--JOB_RUN_ID",
    "jr_0123456789abcdef",
    "--job-bookmark-option",
    "job-bookmark-disable",
    "--TempDir",
    "s3://aws-glue-temporary/admin",
    "--enable-metrics",
    "true",
    "--enable-continuous-cloudwatch-log",
]
LAYOUT = {
    "train/part-00000-of-00001.csv",
    "validation/part-00000-of-00001.csv",
    "test/part-00000-of-00001.csv",
    "rejected/rejected-00000-of-00001.jsonl",
    "baseline/statistics.json",
    "summary.json",
}


def _files(output: Path) -> dict[str, bytes]:
    return {str(p.relative_to(output)): p.read_bytes() for p in sorted(output.rglob("*")) if p.is_file()}


def _split_rows(output: Path, split: str) -> list[dict[str, str]]:
    with (output / split / "part-00000-of-00001.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _rejected(output: Path) -> dict[int, dict[str, Any]]:
    lines = (output / "rejected" / "rejected-00000-of-00001.jsonl").read_text(encoding="utf-8").splitlines()
    return {item["line"]: item for item in map(json.loads, lines)}


def _quiet(_line: str) -> None:
    """Progress lines are not under test here."""


# ---- the real AI4I 2020 file ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(ai4i_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    output = tmp_path_factory.mktemp("real") / "curated"
    return run(["--input", str(ai4i_csv), "--output", str(output)], echo=_quiet), output


def test_real_file_counts(real_run: tuple[dict[str, Any], Path], ai4i_csv: Path) -> None:
    summary, output = real_run
    assert {k: summary[k] for k in ("input", "read", "accepted", "rejected", "duplicates")} == {
        "input": str(ai4i_csv),
        "read": 10000,
        "accepted": 10000,
        "rejected": 0,
        "duplicates": 0,
    }
    assert summary["rejections_by_reason"] == {}
    assert sum(s["rows"] for s in summary["splits"].values()) == 10000
    assert sum(s["positives"] for s in summary["splits"].values()) == 339
    assert all(s["positives"] >= 20 for s in summary["splits"].values())
    # 70/15/15 within a point.
    assert summary["splits"]["train"]["rows"] / 10000 == pytest.approx(0.70, abs=0.01)
    assert json.loads((output / "summary.json").read_text()) == summary


def test_real_file_layout_and_curated_splits(real_run: tuple[dict[str, Any], Path], schema: DatasetSchema) -> None:
    summary, output = real_run
    assert set(_files(output)) == LAYOUT
    assert (output / "rejected" / "rejected-00000-of-00001.jsonl").read_bytes() == b""
    types: Counter[str] = Counter()
    failures = 0
    for split in ("train", "validation", "test"):
        text = (output / split / "part-00000-of-00001.csv").read_text(encoding="utf-8")
        assert "\r" not in text
        assert text.splitlines()[0].split(",") == schema.curated_columns
        rows = _split_rows(output, split)
        assert len(rows) == summary["splits"][split]["rows"]
        ids = [int(r[schema.id_column]) for r in rows]
        assert ids == sorted(ids)
        types.update(r["Type"] for r in rows)
        failures += sum(int(r[schema.label]) for r in rows)
    assert types == {"L": 6000, "M": 2997, "H": 1003}
    assert failures == 339


def test_real_file_statistics_describe_the_train_split(
    real_run: tuple[dict[str, Any], Path], schema: DatasetSchema
) -> None:
    summary, output = real_run
    stats = json.loads((output / "baseline" / "statistics.json").read_text())
    train = _split_rows(output, "train")
    assert stats["rows"] == len(train) == summary["splits"]["train"]["rows"]
    assert stats["label"]["positives"] == summary["splits"]["train"]["positives"]
    for column in schema.numeric_features:
        values = np.array([float(r[column.name]) for r in train])
        feature = stats["numeric_features"][column.name]
        assert feature["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert feature["std"] == pytest.approx(values.std(), rel=1e-9)
        assert sum(feature["histogram"]["counts"]) == len(values)
        assert feature["histogram"]["counts"] == list(np.histogram(values, bins=20)[0])
        assert feature["quantiles"]["p01"] <= feature["quantiles"]["p50"] <= feature["quantiles"]["p99"]
        # Beam's bound: the rank is off by under 1 % of the count.
        assert abs(np.searchsorted(np.sort(values), feature["quantiles"]["p50"]) - len(values) / 2) < len(values) / 100
    frequencies = stats["categorical_features"]["Type"]["frequencies"]
    assert list(frequencies.items()) == [(t, sum(r["Type"] == t for r in train)) for t in ("L", "M", "H")]


# ---- injected bad rows ----------------------------------------------------------------------------


def _row(template: str, **changes: str) -> str:
    fields = template.split(",")
    for index, value in changes.items():
        fields[int(index.removeprefix("f"))] = value
    return ",".join(fields)


@pytest.fixture(scope="module")
def injected(ai4i_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real CSV with a BOM, CRLF endings and bad rows injected at known places."""
    header, *data = ai4i_csv.read_text(encoding="utf-8").splitlines()
    template = data[0]  # 1,M14860,M,298.1,308.6,1551,42.8,0,... (field 0 UDI, 2 Type, 3 air, 6 torque)
    injections = {  # position in the original data -> (line, expected reason, kind)
        150: ("10001,L99999,L,298.1,308.6,1551", "expected 14 fields, found 6", "invalid"),
        2500: (_row(template, f0="10002", f3="hot"), "'Air temperature [K]' must be a number, got 'hot'", "invalid"),
        4000: (_row(template, f0="10003", f6="-5"), "'Torque [Nm]'=-5 is below the plausible minimum 0", "invalid"),
        5000: (_row(template, f0="10004", f2=""), "missing value for 'Type'", "invalid"),
        6000: (data[41], "duplicate UDI 42 (first seen on line 43)", "duplicate"),
        7000: (_row(template, f0="10005") + ",surplus", "expected 14 fields, found 15", "invalid"),
        8000: ("", "blank line", "invalid"),
        9000: ('10006,"L5,000",L,298.1,308.6,1551,42.8,0,0,0,0,0,0,0', None, None),  # good: quoted comma
    }
    lines, expected = [], {}
    for position, line in enumerate(data):
        if position in injections:
            text, reason, kind = injections[position]
            lines.append(text)
            if reason:
                expected[len(lines) + 1] = {"reason": reason, "kind": kind, "raw": text}
        lines.append(line)
    directory = tmp_path_factory.mktemp("injected")
    source = directory / "ai4i_bad.csv"
    source.write_bytes(("\ufeff" + "\r\n".join([header, *lines]) + "\r\n").encode("utf-8"))
    summary = run(["--input", str(source), "--output", str(directory / "curated")], echo=_quiet)
    return {"summary": summary, "output": directory / "curated", "expected": expected}


def test_injected_bad_rows_get_their_reasons(injected: dict[str, Any]) -> None:
    rejected = _rejected(injected["output"])
    assert rejected == {line: {"line": line, **item} for line, item in injected["expected"].items()}
    assert 43 not in rejected  # the first UDI 42 is kept; only its later copy is a duplicate


def test_injected_counts_add_up(injected: dict[str, Any]) -> None:
    summary = injected["summary"]
    assert (summary["read"], summary["accepted"], summary["rejected"], summary["duplicates"]) == (10008, 10001, 6, 1)
    assert summary["read"] == summary["accepted"] + summary["rejected"] + summary["duplicates"]
    assert summary["rejections_by_reason"] == {
        "below minimum": 1,
        "blank line": 1,
        "duplicate id": 1,
        "missing value": 1,
        "not a number": 1,
        "wrong field count": 2,
    }


def test_injected_good_rows_are_all_kept(injected: dict[str, Any], schema: DatasetSchema) -> None:
    rows = [r for split in ("train", "validation", "test") for r in _split_rows(injected["output"], split)]
    ids = [int(r[schema.id_column]) for r in rows]
    assert sorted(ids) == [*range(1, 10001), 10006]
    assert sum(int(r[schema.label]) for r in rows) == 339
    assert Counter(r["Type"] for r in rows) == {"L": 6001, "M": 2997, "H": 1003}
    # The BOM and the CRs never leak into values.
    assert not any("\r" in value or "\ufeff" in value for r in rows for value in r.values())


# ---- the Glue entry script ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def subset_csv(ai4i_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2000 rows: enough for failures in every split, quick to process."""
    lines = ai4i_csv.read_text(encoding="utf-8").splitlines()[:2001]
    path = tmp_path_factory.mktemp("subset") / "ai4i_2000.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Runs a script the way `python script.py` does (sys.path[0] = its folder), then reports where the
# project's modules were imported from, to prove the Glue zip alone supplied them.
_WRAPPER = """
import json, os, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(script))
try:
    runpy.run_path(script, run_name="__main__")
finally:
    origins = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())
               if n.split(".")[0] in ("glue_jobs", "mlkit")}
    print("ORIGINS " + json.dumps(origins))
"""


@pytest.fixture(scope="module")
def glue_runs(subset_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The entry script run twice at once, with Glue's arguments: from the tree, and as Glue runs it."""
    root = tmp_path_factory.mktemp("glue")
    # As Glue runs it: the script alone in a folder, the packages only in the --extra-py-files zip.
    glue_dir = root / "script"
    glue_dir.mkdir()
    script = glue_dir / "preprocess_job.py"
    script.write_bytes((PROJECT_ROOT / "glue_jobs" / "preprocess_job.py").read_bytes())
    libs = build_glue_libs(root / "libs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    job = ["--input", str(subset_csv), "--output"]
    # Glue's arguments before, between and after ours: the script must not care where they are.
    tree_command = [sys.executable, "glue_jobs/preprocess_job.py", *GLUE_ARGS[:4], *job, str(root / "tree")]
    zip_command = [sys.executable, "-c", _WRAPPER, str(script), *GLUE_ARGS, *job, str(root / "zip")]
    commands = {
        "tree": ([*tree_command, *GLUE_ARGS[4:]], PROJECT_ROOT, env),
        "zip": (zip_command, glue_dir, {**env, "PYTHONPATH": str(libs)}),
    }
    processes = {
        name: subprocess.Popen(command, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (command, cwd, environ) in commands.items()
    }
    results: dict[str, Any] = {"libs": libs}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = {"code": process.returncode, "stdout": stdout, "stderr": stderr, "output": root / name}
    return results


@pytest.mark.parametrize("how", ["tree", "zip"])
def test_glue_script_succeeds_with_glue_arguments(glue_runs: dict[str, Any], how: str) -> None:
    result = glue_runs[how]
    assert result["code"] == 0, result["stderr"][-3000:]
    stdout = result["stdout"]
    assert "preprocess_job: ignoring arguments not meant for this job: --JOB_NAME --JOB_RUN_ID" in stdout
    assert "preprocess: running the Beam pipeline (FnApiRunner)" in stdout
    assert "preprocess: read 2000, accepted 2000, rejected 0, duplicates 0" in stdout
    assert "prism" not in (stdout + result["stderr"]).lower()
    assert set(_files(result["output"])) == LAYOUT


def test_glue_zip_alone_supplies_the_job_modules(glue_runs: dict[str, Any]) -> None:
    origins = json.loads(glue_runs["zip"]["stdout"].split("ORIGINS ", 1)[1])
    assert "glue_jobs.preprocess.pipeline" in origins and "mlkit.schema" in origins
    libs = str(glue_runs["libs"])
    assert all(str(path).startswith(libs) for path in origins.values() if path), origins


def test_reruns_write_identical_bytes(glue_runs: dict[str, Any]) -> None:
    tree, packaged = _files(glue_runs["tree"]["output"]), _files(glue_runs["zip"]["output"])
    summary = json.loads(tree["summary.json"])
    assert all(s["positives"] > 0 for s in summary["splits"].values())
    assert tree == packaged  # same input, another process and packaging: the same bytes


def test_row_order_and_compression_do_not_change_the_splits(
    subset_csv: Path, glue_runs: dict[str, Any], tmp_path: Path
) -> None:
    header, *data = subset_csv.read_text(encoding="utf-8").splitlines()
    random.Random(11).shuffle(data)
    compressed = tmp_path / "shuffled.csv.gz"
    compressed.write_bytes(gzip.compress(("\n".join([header, *data]) + "\n").encode()))
    run(["--input", str(compressed), "--output", str(tmp_path / "shuffled")], echo=_quiet)
    ordered = glue_runs["tree"]["output"]
    for split in ("train", "validation", "test"):
        name = f"{split}/part-00000-of-00001.csv"
        assert (ordered / name).read_bytes() == (tmp_path / "shuffled" / name).read_bytes()
    stats = [json.loads((out / "baseline/statistics.json").read_text()) for out in (ordered, tmp_path / "shuffled")]
    for column, feature in stats[0]["numeric_features"].items():
        other = stats[1]["numeric_features"][column]
        assert feature["histogram"] == other["histogram"]
        assert feature["mean"] == pytest.approx(other["mean"], rel=1e-12)


def test_glue_script_fails_with_one_clear_line_from_the_tree(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    done = subprocess.run(
        [sys.executable, "glue_jobs/preprocess_job.py", *GLUE_ARGS, "--input", str(missing), "--output", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    # The last line says it all (Beam itself may log an import warning before it).
    assert done.stderr.strip().splitlines()[-1] == f"preprocess_job: error: input not found: {missing}"
    assert done.stderr.count("preprocess_job: error:") == 1


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = preprocess_job.main(argv)
    return code, capsys.readouterr().err.strip()


def _csv(path: Path, header: str, *rows: str) -> str:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("UDI,Product ID,Type", "header lacks schema column(s) 'Air temperature [K]', "),
        (None, "has column(s) not in schema 'ai4i2020': 'Humidity'"),
    ],
)
def test_header_problems_fail_the_job_naming_the_columns(
    header: str | None, message: str, ai4i_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_header = ai4i_csv.read_text(encoding="utf-8").splitlines()[0]
    source = _csv(tmp_path / "in.csv", header or real_header + ",Humidity")
    code, err = _main([*GLUE_ARGS, "--input", source, "--output", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err.startswith(f"preprocess_job: error: {source}: header ") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "x.csv"], "the following arguments are required: --output"),
        (["--input", "x.csv", "--output", "o", "--schema", "/nowhere/schema.json"], "file not found: /nowhere/"),
    ],
)
def test_bad_arguments_fail_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main(argv, capsys)
    assert code == 1 and len(err.splitlines()) == 1 and message in err


def test_a_split_without_positives_fails_the_job(schema: DatasetSchema) -> None:
    summary = {
        "accepted": 290,
        "splits": {"train": {"rows": 200, "positives": 3}, "validation": {"rows": 45, "positives": 0},
                   "test": {"rows": 45, "positives": 0}},
    }  # fmt: skip
    with pytest.raises(PreprocessError) as failure:
        check_positives(summary, schema)
    assert str(failure.value) == (
        "split(s) validation, test have no positive 'Machine failure' rows (accepted 290 rows); "
        "more data or other split fractions are needed"
    )
    summary["splits"]["validation"]["positives"] = summary["splits"]["test"]["positives"] = 1
    check_positives(summary, schema)


def test_counts_that_do_not_add_up_fail_the_job() -> None:
    splits = {"train": {"rows": 6}, "validation": {"rows": 2}, "test": {"rows": 2}}
    check_counts({"read": 13, "accepted": 10, "rejected": 2, "duplicates": 1, "splits": splits})
    with pytest.raises(PreprocessError, match="read 14, accepted 10 \\+ rejected 2 \\+ duplicates 1 = 13"):
        check_counts({"read": 14, "accepted": 10, "rejected": 2, "duplicates": 1, "splits": splits})
    with pytest.raises(PreprocessError, match="split rows 9"):
        check_counts(
            {"read": 13, "accepted": 10, "rejected": 2, "duplicates": 1, "splits": {**splits, "test": {"rows": 1}}}
        )


def test_job_arguments_keep_ours_and_ignore_glues() -> None:
    argv = [*GLUE_ARGS, "--input", "s3://raw/a.csv", "--output=s3://cur/x", "--unknown", "v", "--schema", "s.json"]
    job, ignored = preprocess_job.job_arguments(argv)
    assert job == ["--input", "s3://raw/a.csv", "--output", "s3://cur/x", "--schema", "s.json"]
    assert ignored == [*GLUE_ARGS, "--unknown", "v"]


def test_pipeline_options_use_the_in_process_runner_and_the_s3_endpoint() -> None:
    options = pipeline_options([], environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    assert options.get_all_options()["runner"] == RUNNER
    assert options.get_all_options()["s3_endpoint_url"] == "http://127.0.0.1:4566"
    specific = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"}
    assert pipeline_options([], environ=specific).get_all_options()["s3_endpoint_url"] == "http://s3:2"
    explicit = pipeline_options(["--s3_endpoint_url", "http://flag:3", "--runner", "DirectRunner"], environ=specific)
    assert explicit.get_all_options()["s3_endpoint_url"] == "http://flag:3"
    assert explicit.get_all_options()["runner"] == "DirectRunner"
    assert pipeline_options([], environ={}).get_all_options()["s3_endpoint_url"] is None


def test_run_refuses_an_empty_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(PreprocessError, match="no header line"):
        run(["--input", str(empty), "--output", str(tmp_path / "out")], echo=_quiet)
