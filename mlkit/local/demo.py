"""``mlkit local demo``: the production flow on LocalStack, from an empty machine to a firing alarm.

1. start LocalStack (installed on first use);
2. deploy the CDK app (stage ``local``) and check that every resource really exists;
3. upload the CSV to the raw bucket, at the key the pipeline reads by default;
4. run the pipeline (Glue, training, quality gate, registry, endpoint) and follow it state by state;
5. send the whole test split through ``sagemaker-runtime`` and compare with the offline evaluation;
6. send malformed requests, and large batches whose ModelLatency exceeds the alarm threshold;
7. wait for the alarms to go to ALARM and for their SNS notifications to reach an SQS queue;
8. print a summary and write it to ``<workdir>/report.json``.

Every step is safe to repeat: the deploy changes nothing when nothing changed, a new pipeline run
updates the same endpoint, and the watched alarms are set back to OK before they are provoked again.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from infra.config import StageConfig
from infra.stacks.monitoring_stack import endpoint_alarm_names
from infra.stages import get_stage
from mlkit.local.clients import client
from mlkit.local.control import up
from mlkit.local.deploy import deploy
from mlkit.local.layout import Layout
from mlkit.local.stage_client import (
    Inbox,
    physical_id,
    run_pipeline,
    serving_training_job,
    stack_resources,
    test_split_and_offline_predictions,
    wait_until,
)
from mlkit.schema import DatasetSchema

Say = Callable[[str], None]
#: The SQS queue the demo subscribes to the alerts topic (kept between runs; purged at each).
INBOX_QUEUE = "mlkit-demo-alerts"
#: Timed phases: steps 1 to 7 of the module docstring (step 8 is the summary).
_PHASES = 7
#: Served and offline probabilities agree to float32 rounding.
_TOLERANCE = 1e-5


class DemoError(RuntimeError):
    """A demo step failed; the message says which and why."""


@dataclass
class DemoReport:
    """What one demo run measured (written to ``report.json``)."""

    seconds: dict[str, float] = field(default_factory=dict)
    resources_checked: int = 0
    unknown_resources: int = 0
    pipeline: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    serving: dict[str, Any] = field(default_factory=dict)
    malformed: dict[str, Any] = field(default_factory=dict)
    slow: dict[str, Any] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)  # when each went to ALARM
    notified: list[str] = field(default_factory=list)


@contextmanager
def _phase(report: DemoReport, name: str, say: Say) -> Iterator[None]:
    say(f"\n[{len(report.seconds) + 1}/{_PHASES}] {name} ...")
    started = time.perf_counter()
    yield
    report.seconds[name] = round(time.perf_counter() - started, 1)
    say(f"[{len(report.seconds)}/{_PHASES}] {name} done in {report.seconds[name]:.1f} s")


def run_demo(data: Path, workdir: Path, schema: DatasetSchema, *, say: Say = print) -> DemoReport:
    """Run the whole local production flow on ``data`` (see the module docstring).

    Raises:
        DemoError: A step failed; the message names it.
    """
    if not data.is_file():
        raise DemoError(f"no dataset at {data}; pass --data PATH or download it with `mlkit fetch-data`")
    stage = get_stage("local")
    layout = Layout()
    report = DemoReport()
    workdir.mkdir(parents=True, exist_ok=True)
    indent: Say = lambda line: say(f"      {line}")  # noqa: E731 - a one-line adapter

    with _phase(report, "LocalStack up", say):
        up(layout, progress=indent)
    with _phase(report, "deploy the CDK app (stage local)", say):
        deployed = deploy(layout, stage="local", progress=indent)
        report.resources_checked, report.unknown_resources = deployed.resources, len(deployed.unknown)
    resources = stack_resources(stage)
    with _phase(report, "upload the data to the raw bucket", say):
        raw = physical_id(resources, "AWS::S3::Bucket", "Raw")
        client("s3").upload_file(str(data), raw, stage.raw_input_key)
        indent(f"{data} -> s3://{raw}/{stage.raw_input_key}")
    inbox = Inbox.subscribe(stage, INBOX_QUEUE)
    with _phase(report, "run the pipeline", say):
        report.pipeline, report.metrics = _run(stage, indent)
    with _phase(report, "invoke the endpoint with the test split", say):
        report.serving, test_rows = _serve_test_split(stage, schema, indent)
    watched = endpoint_alarm_names(stage)
    provoked = [watched["client_errors"], watched["latency"]]
    _reset(provoked, inbox)
    with _phase(report, "malformed requests and slow batches", say):
        # An alarm sees a whole period: the requests of step 5 are in it too. So the malformed requests
        # and slow batches are sized from them, to exceed each threshold three times over.
        earlier = report.serving["requests"]
        malformed = math.ceil(3 * stage.alarms.max_4xx_rate_percent / 100 * earlier)
        report.malformed = _send_malformed(stage, schema, malformed, indent)
        slow = max(8, math.ceil(3 * 0.01 * (earlier + report.malformed["requests"])))  # 1%: above p99
        report.slow = _send_slow_batches(stage, schema, test_rows, slow, indent)
    with _phase(report, "alarms and SNS notifications", say):
        report.alarms, report.notified = _await_alarms(provoked, inbox, indent)
    (workdir / "report.json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    _summary(report, stage, workdir, say)
    return report


def _run(stage: StageConfig, say: Say) -> tuple[dict[str, Any], dict[str, float]]:
    started = time.perf_counter()
    ended = run_pipeline(stage, {}, say=say)
    if ended["status"] != "SUCCEEDED":
        raise DemoError(
            f"the pipeline ended {ended['status']}: {ended.get('error', '')} {ended.get('cause', '')}".strip()
            + "\n(see `mlkit local logs` for the Glue and training logs)"
        )
    job = serving_training_job(stage)
    metrics = {m["MetricName"]: round(float(m["Value"]), 4) for m in job.get("FinalMetricDataList", [])}
    pipeline = {
        "status": ended["status"],
        "seconds": round(time.perf_counter() - started, 1),
        "training_job": job["TrainingJobName"],
        "model": job["ModelArtifacts"]["S3ModelArtifacts"],
    }
    say(f"training job {job['TrainingJobName']}: " + ", ".join(f"{k} {v}" for k, v in sorted(metrics.items())))
    return pipeline, metrics


def _invoke(runtime: Any, stage: StageConfig, body: str | bytes, content_type: str) -> tuple[int, bytes, float]:
    """Invoke the endpoint; return (status, body, seconds). A model's 4xx/5xx comes back as its status."""
    started = time.perf_counter()
    try:
        answer = runtime.invoke_endpoint(EndpointName=stage.endpoint_name, Body=body, ContentType=content_type)
        return 200, answer["Body"].read(), time.perf_counter() - started
    except ClientError as error:
        status = int(error.response.get("OriginalStatusCode") or error.response["ResponseMetadata"]["HTTPStatusCode"])
        message = error.response.get("OriginalMessage") or error.response["Error"].get("Message", "")
        return status, str(message).encode(), time.perf_counter() - started


def _serve_test_split(
    stage: StageConfig, schema: DatasetSchema, say: Say
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    rows, offline = test_split_and_offline_predictions(serving_training_job(stage))
    say(f"sending {len(rows)} test rows, one request each, through sagemaker-runtime")
    runtime = client("sagemaker-runtime")
    latencies: list[float] = []
    mismatches: list[str] = []
    for row in rows:
        body = json.dumps({c.name: row[c.name] for c in schema.features})
        status, answer, seconds = _invoke(runtime, stage, body, "application/json")
        latencies.append(seconds * 1000)
        expected = offline.get(row[schema.id_column])
        served = json.loads(answer)["predictions"][0] if status == 200 else None
        if (
            served is None
            or expected is None
            or served["label"] != expected[1]
            or abs(served["probability"] - expected[0]) > _TOLERANCE
        ):
            mismatches.append(row[schema.id_column])
    quantiles = statistics.quantiles(latencies, n=100)
    result = {
        "requests": len(rows),
        "served_equals_offline": not mismatches and len(rows) == len(offline),
        "mismatches": mismatches[:10],
        "latency_ms": {"p50": round(quantiles[49], 2), "p99": round(quantiles[98], 2)},
    }
    say(
        f"{len(rows)} requests, latency p50 {quantiles[49]:.1f} ms p99 {quantiles[98]:.1f} ms; "
        f"served == offline for every row: {result['served_equals_offline']}"
    )
    if mismatches:
        raise DemoError(f"{len(mismatches)} served predictions differ from the offline evaluation: {mismatches[:10]}")
    return result, rows


def _reset(alarms: list[str], inbox: Inbox) -> None:
    """Set the alarms to OK and empty the inbox, so a rerun sees them fire again."""
    cloudwatch = client("cloudwatch")
    for name in alarms:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="mlkit local demo: reset before a run")
    inbox.drain()


def _send_malformed(stage: StageConfig, schema: DatasetSchema, count: int, say: Say) -> dict[str, Any]:
    good = {c.name: (c.categories[0] if c.categories else c.minimum) for c in schema.features}
    numeric = schema.numeric_features[0].name
    categorical = schema.categorical_features[0].name
    cases: dict[str, tuple[str | bytes, str]] = {
        "not JSON": ("{not json", "application/json"),
        "wrong content type": ("<row/>", "application/xml"),
        "missing field": (json.dumps({k: v for k, v in good.items() if k != numeric}), "application/json"),
        "non-numeric value": (json.dumps({**good, numeric: "hot"}), "application/json"),
        "unknown category": (json.dumps({**good, categorical: "XXL"}), "application/json"),
    }
    runtime = client("sagemaker-runtime")
    answers: dict[str, dict[str, Any]] = {}
    for _ in range(math.ceil(count / len(cases))):
        for case, (body, content_type) in cases.items():
            status, message, _seconds = _invoke(runtime, stage, body, content_type)
            entry = answers.setdefault(case, {"statuses": [], "message": message.decode("utf-8", "replace")[:160]})
            entry["statuses"].append(status)
    for case, entry in answers.items():
        say(f"{case:20s} -> {sorted(set(entry['statuses']))}: {entry['message']}")
    statuses = [s for entry in answers.values() for s in entry["statuses"]]
    if any(not 400 <= s < 500 for s in statuses):
        raise DemoError(f"malformed requests must all get a 4xx, got {sorted(set(statuses))}")
    return {"requests": len(statuses), "all_4xx": True, "cases": answers}


def _send_slow_batches(
    stage: StageConfig, schema: DatasetSchema, rows: list[dict[str, str]], count: int, say: Say
) -> dict[str, Any]:
    """Send CSV batches, growing until one takes well over the latency threshold, then a few of that size."""
    threshold_ms = stage.alarms.model_latency_p99_us / 1000
    runtime = client("sagemaker-runtime")
    lines = [",".join(row[c.name] for c in schema.features) for row in rows]
    size, seconds = len(lines), 0.0
    while True:
        body = "\n".join(lines[i % len(lines)] for i in range(size))
        status, _answer, seconds = _invoke(runtime, stage, body, "text/csv")
        if status != 200:
            raise DemoError(f"a batch of {size} rows got {status}")
        # A request over 6 MB is refused, so growth stops below that (a row is ~30 bytes).
        if seconds * 1000 > 3 * threshold_ms or size * 2 * 40 > 6_000_000:
            break
        size *= 2
    timings = [seconds]
    for _ in range(count - 1):
        timings.append(_invoke(runtime, stage, body, "text/csv")[2])
    say(
        f"{len(timings)} batches of {size} rows: {min(timings) * 1000:.0f}..{max(timings) * 1000:.0f} ms each "
        f"(ModelLatency p99 threshold {threshold_ms:.0f} ms)"
    )
    return {"batches": len(timings), "rows_per_batch": size, "seconds": [round(t, 3) for t in timings]}


def _await_alarms(alarms: list[str], inbox: Inbox, say: Say) -> tuple[dict[str, str], list[str]]:
    """Wait until each alarm has gone to ALARM and its SNS notification has arrived.

    An alarm may return to OK once its breaching period has slid out of the evaluation window, so what
    counts is that it went to ALARM, seen either in its state or in its notification.
    """
    cloudwatch = client("cloudwatch")
    started = time.monotonic()
    states: dict[str, str] = {}
    fired: dict[str, str] = {}
    notified: set[str] = set()

    def probe() -> bool:
        for alarm in cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"]:
            name, state = alarm["AlarmName"], alarm["StateValue"]
            if state != states.get(name):
                say(f"[{time.monotonic() - started:5.0f} s] {name}: {state}")
                states[name] = state
            if state == "ALARM":
                fired.setdefault(name, f"ALARM after {time.monotonic() - started:.0f} s")
        for name in sorted((inbox.alarmed() & set(alarms)) - notified):
            notified.add(name)
            fired.setdefault(name, f"ALARM after {time.monotonic() - started:.0f} s")
            say(f"[{time.monotonic() - started:5.0f} s] SNS notification for {name} arrived in {INBOX_QUEUE}")
        return notified == set(alarms)

    wait_until(probe, bool, timeout=300, interval=2.0, what=f"alarms {alarms} to go to ALARM and notify SNS")
    return fired, sorted(notified)


def _summary(report: DemoReport, stage: StageConfig, workdir: Path, say: Say) -> None:
    total = sum(report.seconds.values())
    m = report.metrics
    say(f"\nmlkit local demo: succeeded in {total:.0f} s (stage {stage.stage}, endpoint {stage.endpoint_name})")
    say("  phases     " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in report.seconds.items()))
    say(f"  deploy     {report.resources_checked} resources checked, {report.unknown_resources} with id 'unknown'")
    say(
        f"  model      F1 {m.get('test_f1', float('nan')):.4f}  ROC-AUC {m.get('test_roc_auc', float('nan')):.4f}  "
        f"accuracy {m.get('test_accuracy', float('nan')):.4f}  (job {report.pipeline['training_job']})"
    )
    s = report.serving
    say(
        f"  endpoint   {s['requests']} requests via sagemaker-runtime, p50 {s['latency_ms']['p50']} ms "
        f"p99 {s['latency_ms']['p99']} ms; served == offline: {s['served_equals_offline']}"
    )
    say(f"  malformed  {report.malformed['requests']} requests, every one answered 4xx with a message")
    say("  alarms     " + ", ".join(f"{name} {when}" for name, when in report.alarms.items()))
    say(f"  SNS        notified: {', '.join(report.notified)}")
    say(f"  report     {workdir / 'report.json'}")
