"""The LocalStack plugin's pure helpers: alarm statistics and metric math, capture lines, Glue arguments,
training metrics, stopping a job's processes. They import nothing from LocalStack, so they are tested
here on the project's Python."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.constructs.metrics import ERROR_RATE_EXPRESSION
from mlkit.localstack_plugin import alarm_math, capture, glue_args, metrics, processes
from training.metrics import format_metric_line, metric_definitions

pytestmark = pytest.mark.unit


# ---- alarm statistics and metric math --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("Sum", 15.0), ("Average", 3.0), ("Minimum", 1.0), ("Maximum", 5.0), ("SampleCount", 5.0)],
)
def test_basic_statistics(stat: str, expected: float) -> None:
    assert alarm_math.statistic([3.0, 1.0, 5.0, 2.0, 4.0], stat) == expected


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert alarm_math.statistic(values, "p99") == 99.0
    assert alarm_math.statistic(values, "p50") == 50.0
    assert alarm_math.statistic(values, "p100") == 100.0
    assert alarm_math.statistic([7.0], "p99") == 7.0
    assert alarm_math.statistic([1.0, 2.0], "p99.9") == 2.0


def test_no_values_is_no_datapoint_and_unknown_statistics_are_refused() -> None:
    assert alarm_math.statistic([], "p99") is None
    with pytest.raises(alarm_math.ExpressionError, match="unsupported statistic 'tm99'"):
        alarm_math.statistic([1.0], "tm99")


@pytest.mark.parametrize(
    ("errors", "invocations", "expected"),
    [(5.0, 100.0, 5.0), (0.0, 100.0, 0.0), (0.0, 0.0, 0.0), (None, None, None), (1.0, 3.0, 100 / 3)],
)
def test_the_error_rate_expression_of_the_kit_alarms(
    errors: float | None, invocations: float | None, expected: float | None
) -> None:
    expression = ERROR_RATE_EXPRESSION.format(errors="errors")
    assert alarm_math.evaluate(expression, {"errors": errors, "invocations": invocations}) == expected


def test_fill_arithmetic_and_logic() -> None:
    assert alarm_math.evaluate("FILL(failed, 0) + FILL(timedOut, 0)", {"failed": None, "timedOut": 2.0}) == 2.0
    assert alarm_math.evaluate("failed + timedOut", {"failed": None, "timedOut": 2.0}) is None
    assert alarm_math.evaluate("a / b", {"a": 1.0, "b": 0.0}) is None  # CloudWatch drops the datapoint
    assert alarm_math.evaluate("a > 1 AND NOT b", {"a": 2.0, "b": 0.0}) == 1.0
    assert alarm_math.evaluate("a > 1 OR b > 1", {"a": 0.0, "b": 0.0}) == 0.0
    assert alarm_math.evaluate("ABS(a - 10)", {"a": 4.0}) == 6.0
    assert alarm_math.evaluate("-a * 2", {"a": 4.0}) == -8.0


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("a ** 2", "unsupported operator Pow"),
        ("ANOMALY_DETECTION_BAND(a)", "unsupported function ANOMALY_DETECTION_BAND"),
        ("missing + 1", "unknown metric id 'missing'"),
        ("1 < a < 3", "only single comparisons"),
        ("a +", "cannot parse"),
        ("'text'", "unsupported constant"),
    ],
)
def test_unsupported_math_is_a_clear_error(expression: str, message: str) -> None:
    with pytest.raises(alarm_math.ExpressionError, match=re.escape(message)):
        alarm_math.evaluate(expression, {"a": 1.0})


# ---- data capture ------------------------------------------------------------------------------------

HEADER = {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]}
WHEN = datetime(2026, 12, 3, 23, 59, 58, 123456, tzinfo=UTC)


def test_a_capture_line_has_the_documented_fields() -> None:
    line = capture.record(
        request=b'{"a": 1}',
        request_type="application/json",
        response=b"0.5\n",
        response_type="text/csv; charset=utf-8",
        modes={"INPUT", "OUTPUT"},
        header=HEADER,
        when=WHEN,
        event_id="e-1",
    )
    parsed = json.loads(line)
    assert parsed == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": '{"a": 1}',
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "0.5\n",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": "e-1", "inferenceTime": "2026-12-03T23:59:58.123Z"},
        "eventVersion": "0",
    }
    assert "\n" not in line  # one JSON Lines record


def test_unlisted_content_types_and_a_missing_header_are_base64() -> None:
    assert capture.encoding_for("application/x-npy", HEADER) == "BASE64"
    assert capture.encoding_for("application/json", None) == "BASE64"
    entry = capture.payload(b"\x00\x01", "application/x-npy", "INPUT", HEADER)
    assert base64.b64decode(entry["data"]) == b"\x00\x01"


def test_input_only_capture_and_a_failed_response() -> None:
    only_input = json.loads(
        capture.record(
            request=b"x", request_type="text/csv", response=b"y", response_type="text/csv",
            modes={"INPUT"}, header=HEADER, when=WHEN,
        )
    )  # fmt: skip
    assert set(only_input["captureData"]) == {"endpointInput"}
    failed = json.loads(
        capture.record(
            request=b"x", request_type="text/csv", response=None, response_type="text/csv",
            modes={"INPUT", "OUTPUT"}, header=HEADER, when=WHEN,
        )
    )  # fmt: skip
    assert set(failed["captureData"]) == {"endpointInput"}
    assert capture.capture_modes({"CaptureOptions": [{"CaptureMode": "Output"}]}) == {"OUTPUT"}
    assert capture.capture_modes({}) == {"INPUT", "OUTPUT"}


def test_capture_files_land_under_endpoint_variant_and_the_inference_hour() -> None:
    key = capture.object_key("/datacapture/", "ep", "AllTraffic", WHEN)
    assert re.fullmatch(r"datacapture/ep/AllTraffic/2026/12/03/23/59-58-123-[0-9a-f-]{36}\.jsonl", key), key
    assert capture.object_key("", "ep", "AllTraffic", WHEN).startswith("ep/AllTraffic/2026/12/03/23/")


# ---- Glue arguments ----------------------------------------------------------------------------------


def test_glue_merges_defaults_run_arguments_and_its_own() -> None:
    merged = glue_args.merge_arguments(
        {"--input": "s3://raw/a.csv", "--output": "s3://cur/default/"},
        {"--output": "s3://cur/run/", "extra": "1"},
        {"--input": "s3://raw/locked.csv"},
        job_name="job",
        run_id="jr_abc",
        temp_dir="s3://tmp/",
    )
    assert merged["--input"] == "s3://raw/locked.csv"  # non-overridable wins
    assert merged["--output"] == "s3://cur/run/"  # the run's argument beats the default
    assert merged["--extra"] == "1"
    assert (merged["--JOB_NAME"], merged["--JOB_RUN_ID"], merged["--TempDir"]) == ("job", "jr_abc", "s3://tmp/")
    argv = glue_args.script_argv(merged)
    assert argv[argv.index("--output") + 1] == "s3://cur/run/"
    assert len(argv) == 2 * len(merged)


def test_extra_py_files_are_a_comma_separated_list() -> None:
    assert glue_args.extra_py_files({"--extra-py-files": "s3://a/x.zip, s3://a/y.py,"}) == [
        "s3://a/x.zip",
        "s3://a/y.py",
    ]
    assert glue_args.extra_py_files({}) == []


# ---- training metrics from the log -------------------------------------------------------------------


def test_final_metrics_are_the_last_match_of_each_definition() -> None:
    log = [
        "epoch 1/2: loss 0.4",
        format_metric_line("test_f1", 0.5),
        "noise test_f1=oops",
        format_metric_line("test_f1", 0.9358),
        format_metric_line("test_accuracy", 0.9953),
    ]
    ended = datetime(2026, 12, 3, tzinfo=UTC)
    found = metrics.final_metrics(log, metric_definitions(), ended)
    values = {m["MetricName"]: m["Value"] for m in found}
    assert values["test_f1"] == pytest.approx(0.9358)
    assert values["test_accuracy"] == pytest.approx(0.9953)
    assert "test_roc_auc" not in values  # never logged: absent, not zero
    assert {m["Timestamp"] for m in found} == {ended}


# ---- stopping a job's processes ----------------------------------------------------------------------


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_stop_reaches_the_running_processes_of_a_job() -> None:
    stopper = processes.Stopper()
    running = _sleeper()
    stopper.register(running)
    assert running.poll() is None and not stopper.requested

    stopper.request()

    assert stopper.requested
    assert running.poll() == -signal.SIGTERM


def test_a_stop_asked_for_before_the_process_starts_is_not_lost(tmp_path: Path) -> None:
    stopper = processes.Stopper()
    stopper.request()  # e.g. StopTrainingJob while the job still downloads its channels

    code, timed_out = processes.run_logged(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=tmp_path / "job.log",
        env=dict(os.environ),
        timeout=120,
        register=stopper,
    )

    assert (code, timed_out) == (-signal.SIGTERM, False)
