"""The endpoint emulation over real HTTP, serving a real SavedModel with the kit's model contract."""

from __future__ import annotations

import csv
import http.client
import io
import json
import queue
import signal
import subprocess
import sys
import threading
import types
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mlkit.endpoint.testing import build_model_tar, expected_probability
from mlkit.endpoint_server import (
    MAX_PAYLOAD_BYTES,
    MODEL_LATENCY_HEADER,
    OVERHEAD_LATENCY_HEADER,
    PREDICT_LATENCY_HEADER,
    EndpointServer,
)
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.unit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(url: str, body: bytes | str | None = None, headers: dict[str, str] | None = None) -> Reply:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


def invoke(server: EndpointServer, body: bytes | str, content_type: str = "application/json", **more: str) -> Reply:
    return call(f"{server.url}/invocations", body, {"Content-Type": content_type, **more})


def rows(schema: DatasetSchema, count: int = 4) -> list[dict[str, Any]]:
    """Valid, distinct records of raw values keyed by column name."""
    records = []
    for i in range(count):
        record: dict[str, Any] = {}
        for column in schema.features:
            if column.kind == "categorical":
                record[column.name] = column.categories[i % len(column.categories)]
            else:
                low, high = column.minimum or 0.0, column.maximum or 1.0
                record[column.name] = round(low + (high - low) * (0.3 + 0.1 * i), 2)
        records.append(record)
    return records


def csv_body(schema: DatasetSchema, records: list[dict[str, Any]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    for record in records:
        writer.writerow([record.get(name, "x") for name in (header or [c.name for c in schema.features])])
    return out.getvalue()


@pytest.fixture(scope="module")
def model_tar(tmp_path_factory: pytest.TempPathFactory, schema: DatasetSchema) -> Path:
    return build_model_tar(tmp_path_factory.mktemp("model") / "model.tar.gz", schema)


@pytest.fixture(scope="module")
def server(model_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointServer]:
    with EndpointServer(model_tar, workdir=tmp_path_factory.mktemp("endpoint")) as running:
        yield running


# ---- serving ------------------------------------------------------------------------------------


def test_ping_answers_once_loaded_and_unknown_paths_are_404(server: EndpointServer) -> None:
    assert call(f"{server.url}/ping").status == 200
    assert server.ready and server.service is not None and server.service.mode == "input/output handlers"
    missing = call(f"{server.url}/nope")
    assert (missing.status, missing.json()) == (404, {"error": "Not Found"})


def test_json_object_gets_the_models_prediction(server: EndpointServer, schema: DatasetSchema) -> None:
    record = rows(schema)[1]
    reply = invoke(server, json.dumps(record))
    assert (reply.status, reply.headers["Content-Type"]) == (200, "application/json")
    (prediction,) = reply.json()["predictions"]
    assert prediction["probability"] == pytest.approx(expected_probability(schema, record), rel=1e-5)
    assert prediction["label"] == int(prediction["probability"] >= 0.5)


def test_every_content_type_gives_the_same_predictions(server: EndpointServer, schema: DatasetSchema) -> None:
    records = rows(schema)
    expected = invoke(server, json.dumps(records)).json()
    assert [p["probability"] for p in expected["predictions"]] == pytest.approx(
        [expected_probability(schema, r) for r in records], rel=1e-5
    )
    reordered = [schema.id_column, *reversed([c.name for c in schema.features])]
    bodies = {
        "JSON Lines": ("\n".join(json.dumps(r) for r in records), "application/jsonlines"),
        "CSV": (csv_body(schema, records), "text/csv"),
        "CSV with header": (csv_body(schema, records, reordered), "text/csv"),
        "TF Serving instances": (json.dumps({"instances": records}), "application/json"),
    }
    for name, (body, content_type) in bodies.items():
        reply = invoke(server, body, content_type)
        assert (name, reply.status, reply.json()) == (name, 200, expected)


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("text/csv", "text/csv"),
        ("text/csv;header=present", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("*/*", "application/json"),
        ("application/xml, application/jsonlines;q=0.5", "application/jsonlines"),
    ],
)
def test_accept_header_picks_the_answer_format(
    server: EndpointServer, schema: DatasetSchema, accept: str, content_type: str
) -> None:
    records = rows(schema, 2)
    reference = invoke(server, json.dumps(records)).json()["predictions"]
    reply = invoke(server, json.dumps(records), Accept=accept)
    assert (reply.status, reply.headers["Content-Type"]) == (200, content_type)
    text = reply.body.decode()
    if content_type == "text/csv":
        lines = text.splitlines()[1:] if "header=present" in accept else text.splitlines()
        answers = [{"probability": float(p), "label": int(label)} for p, label in csv.reader(lines)]
    elif content_type == "application/jsonlines":
        answers = [json.loads(line) for line in text.splitlines()]
    else:
        answers = json.loads(text)["predictions"]
    assert answers == reference


def test_latencies_are_reported_in_headers_and_stats(server: EndpointServer, schema: DatasetSchema) -> None:
    before = server.stats.snapshot()
    good = invoke(server, json.dumps(rows(schema)))
    bad = invoke(server, "{", "application/json")
    after = server.stats.snapshot()
    for reply in (good, bad):
        model_us, overhead_us = int(reply.headers[MODEL_LATENCY_HEADER]), int(reply.headers[OVERHEAD_LATENCY_HEADER])
        assert model_us > 0 and overhead_us >= 0
    assert int(good.headers[PREDICT_LATENCY_HEADER]) > 0
    assert int(bad.headers[PREDICT_LATENCY_HEADER]) == 0  # refused before the model
    assert (after.invocations - before.invocations, after.errors_4xx - before.errors_4xx) == (2, 1)
    last = after.records[-1]
    assert (last.status, last.model_latency_us) == (400, int(bad.headers[MODEL_LATENCY_HEADER]))
    assert after.percentile("model_latency_us", 50) is not None


# ---- bad requests -------------------------------------------------------------------------------


def _bad_requests(schema: DatasetSchema) -> list[tuple[str, dict[str, str], bytes, int, str]]:
    record = rows(schema)[0]
    numeric, category = schema.numeric_features[0], schema.categorical_features[0]
    json_type = {"Content-Type": "application/json"}
    return [
        (
            "wrong content type",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"a=1",
            415,
            "unsupported content type",
        ),
        ("empty body", json_type, b"", 400, "request body is empty"),
        ("bad JSON", json_type, b'{"Type": ', 400, "request body is not valid JSON"),
        (
            "missing field",
            json_type,
            json.dumps({k: v for k, v in record.items() if k != numeric.name}).encode(),
            400,
            f"row 1: missing field '{numeric.name}'",
        ),
        (
            "non-numeric value",
            {"Content-Type": "text/csv"},
            csv_body(schema, [record, {**record, numeric.name: "hot"}]).encode(),
            400,
            f"line 2: '{numeric.name}' must be a number, got 'hot'",
        ),
        (
            "unknown category",
            json_type,
            json.dumps({**record, category.name: "XL"}).encode(),
            400,
            f"unknown category 'XL' for '{category.name}' (allowed: {', '.join(category.categories)})",
        ),
        ("unsupported Accept", {**json_type, "Accept": "image/png"}, json.dumps(record).encode(), 406, "image/png"),
    ]


def test_malformed_requests_get_a_4xx_naming_the_problem(server: EndpointServer, schema: DatasetSchema) -> None:
    for name, headers, body, status, message in _bad_requests(schema):
        reply = call(f"{server.url}/invocations", body, headers)
        assert (name, reply.status) == (name, status)
        assert message in reply.json()["error"], name
    assert call(f"{server.url}/ping").status == 200
    assert invoke(server, json.dumps(rows(schema)[0])).status == 200


def test_payload_over_six_megabytes_is_413_and_the_server_carries_on(server: EndpointServer) -> None:
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    connection = http.client.HTTPConnection(str(host), port, timeout=60)
    try:
        connection.request("POST", "/invocations", b" " * (MAX_PAYLOAD_BYTES + 1), {"Content-Type": "text/csv"})
        response = connection.getresponse()
        assert response.status == 413
        assert "exceeds the 6 MB payload limit" in json.loads(response.read())["error"]
    finally:
        connection.close()
    assert call(f"{server.url}/ping").status == 200


def test_chunked_bodies_are_read_and_capped_too(server: EndpointServer, schema: DatasetSchema) -> None:
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    record = json.dumps(rows(schema)[0]).encode()
    megabyte = b" " * (1024 * 1024)
    for chunks, status in (([record[:10], record[10:]], 200), ([megabyte] * 7, 413)):
        connection = http.client.HTTPConnection(str(host), port, timeout=60)
        try:  # an iterable body without Content-Length is sent chunked
            connection.request("POST", "/invocations", iter(chunks), {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert (response.status, response.getheader("Transfer-Encoding")) == (status, None)
            if status == 413:
                assert "exceeds the 6 MB payload limit" in json.loads(response.read())["error"]
        finally:
            connection.close()


def test_an_internal_failure_is_a_logged_500_and_the_server_carries_on(
    server: EndpointServer, schema: DatasetSchema, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    assert server.service is not None
    monkeypatch.setattr(server.service, "invoke", broken)
    reply = invoke(server, json.dumps(rows(schema)[0]))
    assert (reply.status, reply.json()) == (500, {"error": "internal error: RuntimeError: disk on fire"})
    assert "internal error in the container emulation" in caplog.text
    monkeypatch.undo()
    assert call(f"{server.url}/ping").status == 200
    assert invoke(server, json.dumps(rows(schema)[0])).status == 200


def test_keep_alive_connection_serves_several_requests(server: EndpointServer, schema: DatasetSchema) -> None:
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    connection = http.client.HTTPConnection(str(host), port, timeout=60)
    try:
        for body in (b"{", json.dumps(rows(schema)[0]).encode(), b"{"):
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 400)
            assert response.getheader("Connection") != "close"
    finally:
        connection.close()


def test_concurrent_requests_are_answered_independently(server: EndpointServer, schema: DatasetSchema) -> None:
    records = rows(schema, 8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda r: invoke(server, json.dumps(r)), records * 3))
    assert all(reply.status == 200 for reply in replies)
    probabilities = [reply.json()["predictions"][0]["probability"] for reply in replies]
    expected = [expected_probability(schema, r) for r in records * 3]
    assert probabilities == pytest.approx(expected, rel=1e-5)


# ---- TF Serving's REST API ----------------------------------------------------------------------


def test_tf_serving_rest_api_row_and_columnar_formats(server: EndpointServer, schema: DatasetSchema) -> None:
    records = rows(schema, 2)
    instances = [{c.key: r[c.name] for c in schema.features} for r in records]
    predict = f"{server.url}/v1/models/model:predict"
    row = call(predict, json.dumps({"instances": instances}))
    assert row.status == 200
    assert [p["probability"] for p in row.json()["predictions"]] == pytest.approx(
        [expected_probability(schema, r) for r in records], rel=1e-5
    )
    columnar = call(predict, json.dumps({"inputs": {k: [i[k] for i in instances] for k in instances[0]}}))
    assert columnar.json()["outputs"] == {
        "probability": [p["probability"] for p in row.json()["predictions"]],
        "label": [p["label"] for p in row.json()["predictions"]],
    }
    status = call(f"{server.url}/v1/models/model").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/models/model:predict", "{", 400, "JSON Parse error"),
        ("/v1/models/model:predict", '{"signature_name": "nope", "instances": [{}]}', 400, "'nope' not found"),
        ("/v1/models/model:predict", "{}", 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/model:predict", '{"instances": [{"x": 1}]}', 400, "missing input(s)"),
        ("/v1/models/other:predict", '{"instances": []}', 404, "Servable not found for request: Latest(other)"),
        ("/v1/models/model/versions/7:predict", "{}", 404, "Specific(model, 7)"),
    ],
)
def test_tf_serving_rest_api_errors(server: EndpointServer, path: str, body: str, status: int, message: str) -> None:
    reply = call(f"{server.url}{path}", body)
    assert reply.status == status
    assert message in reply.json()["error"]


def test_tf_serving_rejects_values_of_the_wrong_type(server: EndpointServer, schema: DatasetSchema) -> None:
    instance = {c.key: ("L" if c.kind == "categorical" else 1.0) for c in schema.features}
    instance[schema.numeric_features[0].key] = "warm"
    reply = call(f"{server.url}/v1/models/model:predict", json.dumps({"instances": [instance]}))
    assert reply.status == 400
    assert f"input '{schema.numeric_features[0].key}'" in reply.json()["error"]


def test_tf_serving_reports_runtime_errors_without_graph_noise(server: EndpointServer, schema: DatasetSchema) -> None:
    inputs = {c.key: ["L"] * 2 if c.kind == "categorical" else [1.0] * 3 for c in schema.features}
    reply = call(f"{server.url}/v1/models/model:predict", json.dumps({"inputs": inputs}))
    assert reply.status == 400
    assert reply.json()["error"].startswith("Incompatible shapes")


# ---- other model layouts ------------------------------------------------------------------------


def test_model_without_code_is_served_by_the_nginx_path(
    tmp_path_factory: pytest.TempPathFactory, schema: DatasetSchema
) -> None:
    archive = build_model_tar(tmp_path_factory.mktemp("nocode") / "model.tar.gz", schema, code=False)
    record = rows(schema)[2]
    with EndpointServer(archive) as plain:
        assert plain.service is not None and plain.service.mode == "nginx"
        instance = {c.key: record[c.name] for c in schema.features}
        reply = invoke(plain, json.dumps({"instances": [instance]}))
        assert reply.status == 200
        (prediction,) = reply.json()["predictions"]
        assert prediction["probability"] == pytest.approx(expected_probability(schema, record), rel=1e-5)
        assert invoke(plain, "a,b", "image/png").status == 415
        by_raw_names = invoke(plain, json.dumps(record))  # nginx does not know the schema: TF Serving refuses
        assert by_raw_names.status == 400


def test_a_custom_handler_can_post_to_context_rest_uri(tmp_path: Path, schema: DatasetSchema) -> None:
    script = tmp_path / "inference.py"
    script.write_text(
        "import urllib.request\n"
        "def handler(data, context):\n"
        "    request = urllib.request.Request(context.rest_uri, data=data.read(), method='POST')\n"
        "    with urllib.request.urlopen(request, timeout=30) as response:\n"
        "        return response.read(), 'application/json'\n",
        encoding="utf-8",
    )
    archive = build_model_tar(tmp_path / "model.tar.gz", schema, inference_script=script)
    record = rows(schema)[3]
    with EndpointServer(archive) as custom:
        instance = {c.key: record[c.name] for c in schema.features}
        reply = invoke(custom, json.dumps({"instances": [instance]}))
    assert reply.status == 200
    assert reply.json()["predictions"][0]["probability"] == pytest.approx(
        expected_probability(schema, record), rel=1e-5
    )


def test_stop_lets_a_request_in_progress_finish(
    tmp_path: Path, schema: DatasetSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = types.ModuleType("endpoint_test_gate")
    gate.entered, gate.release = threading.Event(), threading.Event()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, gate.__name__, gate)
    script = tmp_path / "inference.py"
    script.write_text(
        "def handler(data, context):\n"
        "    import endpoint_test_gate as gate\n"
        "    gate.entered.set()\n"
        "    gate.release.wait(60)\n"
        "    return b'done', 'text/plain'\n",
        encoding="utf-8",
    )
    server = EndpointServer(build_model_tar(tmp_path / "model.tar.gz", schema, inference_script=script))
    server.start()
    server.wait_ready()
    with ThreadPoolExecutor(max_workers=2) as pool:
        reply = pool.submit(invoke, server, "{}")
        assert gate.entered.wait(60)  # type: ignore[attr-defined]
        stopping = pool.submit(server.stop)
        gate.release.set()  # type: ignore[attr-defined]
        stopping.result(timeout=60)
        answer = reply.result(timeout=60)
    assert (answer.status, answer.body) == (200, b"done")


# ---- command line -------------------------------------------------------------------------------


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_cli_serves_until_sigterm(model_tar: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mlkit.endpoint_server", "--model-tar", str(model_tar), "--port", "0"]
    process = subprocess.Popen([*command, "--workdir", str(tmp_path)], stderr=subprocess.PIPE, text=True)
    try:
        lines, url = _lines(process.stderr), None
        while url is None:
            line = lines.get(timeout=120)  # a hang guard, not a performance check
            if "ready: " in line:
                url = line.split("ready: ", 1)[1].split()[0]
        assert call(f"{url}/ping").status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not any(tmp_path.iterdir())


def test_cli_exits_1_when_the_model_cannot_be_served(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tar.gz"
    command = [sys.executable, "-m", "mlkit.endpoint_server", "--model-tar", str(missing), "--port", "0"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 1
    assert "model archive not found" in completed.stderr
