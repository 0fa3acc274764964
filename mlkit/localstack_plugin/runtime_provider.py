# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""SageMaker Runtime: InvokeEndpoint proxied to the endpoint's server, with AWS/SageMaker metrics and data capture.

Every request records, as SageMaker does, in namespace ``AWS/SageMaker`` with dimensions ``EndpointName``
and ``VariantName``: ``Invocations``, ``InvocationsPerInstance`` (1/instance count),
``Invocation4XXErrors`` and ``Invocation5XXErrors`` (1 or 0), and ``ModelLatency`` and
``OverheadLatency`` in microseconds. A background thread batches them into LocalStack's CloudWatch,
and the captured requests into JSON Lines files in LocalStack's S3, so requests never wait for either.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localstack.aws.api import RequestContext, ServiceException, handler

from . import aws, capture, endpoints
from .sagemaker_provider import get_endpoint

#: The endpoint server reports its own share of the time in these headers (microseconds).
MODEL_LATENCY_HEADER = "X-Mlkit-Model-Latency-Us"
#: SageMaker's limit for one invocation.
INVOCATION_TIMEOUT = 60.0
_FLUSH_SECONDS = 1.0


class ModelError(ServiceException):
    """The model container answered with an error (HTTP 424, like SageMaker)."""

    code = "ModelError"
    status_code = 424
    sender_fault = True

    def __init__(self, message: str, original_status: int, original_message: str, log_stream_arn: str) -> None:
        super().__init__(message)
        self.OriginalStatusCode = original_status
        self.OriginalMessage = original_message
        self.LogStreamArn = log_stream_arn


class EndpointNotReady(ServiceException):
    """InvokeEndpoint on an endpoint that does not exist or does not serve."""

    code = "ValidationError"
    status_code = 400
    sender_fault = True


@dataclass
class _Event:
    account_id: str
    region: str
    endpoint: str
    variant: str
    when: datetime
    status: int
    model_us: float
    overhead_us: float
    instance_count: int
    capture_line: str | None
    capture_prefix: str | None


class Recorder:
    """Publishes metrics and capture files from a queue, in a daemon thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[_Event] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, event: _Event) -> None:
        """Queue one request's metrics (and capture line) for publishing."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mlkit-sagemaker-recorder", daemon=True)
                self._thread.start()
        self._queue.put(event)

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + _FLUSH_SECONDS
            while time.monotonic() < deadline:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._publish(batch)
            except Exception:
                aws.LOG.warning("could not publish SageMaker metrics or capture", exc_info=True)

    def _publish(self, batch: list[_Event]) -> None:
        metrics: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        # One file per endpoint, variant and hour of the events' own time (not the flush's), as SageMaker
        # files a capture line under the hour of its inference.
        captured: dict[tuple[str, str, str, str, str, str], list[_Event]] = defaultdict(list)
        for event in batch:
            metrics[(event.account_id, event.region)] += _datums(event)
            if event.capture_line and event.capture_prefix:
                hour = event.when.strftime("%Y%m%d%H")
                group = (event.account_id, event.region, event.capture_prefix, event.endpoint, event.variant, hour)
                captured[group].append(event)
        for (account_id, region), data in metrics.items():
            cloudwatch = aws.clients(account_id, region).cloudwatch
            for chunk in aws.chunks(data, 500):
                cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=list(chunk))
        for (account_id, region, prefix, endpoint, variant, _hour), events in captured.items():
            bucket, key_prefix = aws.split_s3_uri(prefix)
            key = capture.object_key(key_prefix, endpoint, variant, events[0].when)
            body = ("\n".join(e.capture_line for e in events if e.capture_line) + "\n").encode()
            aws.clients(account_id, region).s3.put_object(Bucket=bucket, Key=key, Body=body)


def _datums(event: _Event) -> list[dict[str, Any]]:
    dimensions = [{"Name": "EndpointName", "Value": event.endpoint}, {"Name": "VariantName", "Value": event.variant}]
    is_4xx = 400 <= event.status < 500
    is_5xx = event.status >= 500 or event.status == 0

    def datum(name: str, value: float, unit: str) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dimensions, "Timestamp": event.when, "Value": value, "Unit": unit}

    data = [
        datum("Invocations", 1.0, "None"),
        datum("InvocationsPerInstance", 1.0 / max(event.instance_count, 1), "None"),
        datum("Invocation4XXErrors", 1.0 if is_4xx else 0.0, "None"),
        datum("Invocation5XXErrors", 1.0 if is_5xx else 0.0, "None"),
        datum("OverheadLatency", event.overhead_us, "Microseconds"),
    ]
    if event.status and not is_5xx:
        # SageMaker reports ModelLatency for requests the model answered.
        data.append(datum("ModelLatency", event.model_us, "Microseconds"))
    return data


RECORDER = Recorder()


class SageMakerRuntimeProvider:
    """SageMaker Runtime API: InvokeEndpoint."""

    service = "sagemaker-runtime"

    @handler("InvokeEndpoint", expand=False)
    def invoke_endpoint(self, context: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
        """Forward one request to a variant's server and return its answer.

        Raises:
            EndpointNotReady: The endpoint does not exist or is not serving.
            ModelError: The model answered 4xx/5xx, or did not answer within 60 s.
        """
        received = time.perf_counter()
        name = request["EndpointName"]
        try:
            endpoint = get_endpoint(context.account_id, context.region, name, context.region)
        except ServiceException:
            raise EndpointNotReady(f"Endpoint {name} of account {context.account_id} not found.") from None
        if endpoint.status not in ("InService", "Updating"):
            raise EndpointNotReady(f"Endpoint {name} is not ready: its status is {endpoint.status}.")
        body = request.get("Body") or b""
        # The body arrives as a one-shot stream: read it exactly once.
        data = body.read() if hasattr(body, "read") else bytes(body)
        content_type = request.get("ContentType") or "application/octet-stream"
        accept = request.get("Accept") or "*/*"
        variant = endpoint.pick_variant(request.get("TargetVariant"))
        if variant is None:
            raise EndpointNotReady(
                f"Variant {request.get('TargetVariant')} not found on endpoint {name}."
                if request.get("TargetVariant")
                else f"Endpoint {name} has no variant serving."
            )
        try:
            status, answer, answer_type, model_us = _forward(variant, data, content_type, accept, request)
        finally:
            endpoint.release(variant)
        overhead_us = max((time.perf_counter() - received) * 1e6 - model_us, 0.0)
        when = datetime.now(UTC)
        _record(
            context,
            endpoint,
            variant,
            _Exchange(when, status, model_us, overhead_us, data, content_type, answer, answer_type),
        )
        if not 200 <= status < 300:
            text = answer.decode("utf-8", errors="replace")
            kind = "client" if 400 <= status < 500 else "server"
            log_stream = f"arn:aws:logs:{context.region}:{context.account_id}:log-group:/aws/sagemaker/Endpoints/{name}"
            raise ModelError(
                f'Received {kind} error ({status}) from {variant.name} with message "{text}". '
                f"See {log_stream} in account {context.account_id} for more information.",
                status,
                text,
                log_stream,
            )
        response: dict[str, Any] = {
            "Body": answer,
            "ContentType": answer_type,
            "InvokedProductionVariant": variant.name,
        }
        return response


@dataclass
class _Exchange:
    """One request and its answer, as measured by the proxy."""

    when: datetime
    status: int
    model_us: float
    overhead_us: float
    request: bytes
    request_type: str
    answer: bytes
    answer_type: str


def _record(
    context: RequestContext, endpoint: endpoints.Endpoint, variant: endpoints.Variant, exchange: _Exchange
) -> None:
    """Queue the request's metrics, and its capture line when the endpoint config samples it."""
    config = endpoint.capture
    line, prefix = None, None
    enabled = bool(config) and config.get("EnableCapture", True) and config.get("DestinationS3Uri")
    if enabled and random.uniform(0, 100) < float(config.get("InitialSamplingPercentage", 100)):
        prefix = str(config["DestinationS3Uri"])
        line = capture.record(
            request=exchange.request,
            request_type=exchange.request_type,
            response=exchange.answer if 200 <= exchange.status < 300 else None,
            response_type=exchange.answer_type,
            modes=capture.capture_modes(config),
            header=config.get("CaptureContentTypeHeader"),
            when=exchange.when,
            event_id=str(uuid.uuid4()),
        )
    RECORDER.submit(
        _Event(
            account_id=context.account_id,
            region=context.region,
            endpoint=endpoint.name,
            variant=variant.name,
            when=exchange.when,
            status=exchange.status,
            model_us=exchange.model_us,
            overhead_us=exchange.overhead_us,
            instance_count=variant.instance_count,
            capture_line=line,
            capture_prefix=prefix,
        )
    )


def _forward(
    variant: endpoints.Variant, data: bytes, content_type: str, accept: str, request: dict[str, Any]
) -> tuple[int, bytes, str, float]:
    """POST the body to the variant's ``/invocations``; return status, body, content type and model µs."""
    headers = {"Content-Type": content_type, "Accept": accept}
    if request.get("CustomAttributes"):
        headers["X-Amzn-SageMaker-Custom-Attributes"] = request["CustomAttributes"]
    call = urllib.request.Request(f"{variant.server.url}/invocations", data=data, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(call, timeout=INVOCATION_TIMEOUT) as response:
            status, answer, reply_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, answer, reply_headers = error.code, error.read(), error.headers
    except (OSError, urllib.error.URLError) as error:
        elapsed = (time.perf_counter() - started) * 1e6
        return 0, f"Your invocation failed while waiting for the model: {error}".encode(), "text/plain", elapsed
    elapsed_us = (time.perf_counter() - started) * 1e6
    reported = reply_headers.get(MODEL_LATENCY_HEADER)
    try:
        model_us = float(reported) if reported else elapsed_us
    except ValueError:
        model_us = elapsed_us
    return status, answer, reply_headers.get("Content-Type", "application/json"), model_us
