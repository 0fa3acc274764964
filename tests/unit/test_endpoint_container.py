"""The container's request path (handlers, nginx, error statuses, imports), with TF Serving faked."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import pytest

import mlkit.schema
from mlkit.endpoint.container import ContainerService, Headers, load_handler_module, status_of
from mlkit.endpoint.model_dir import EndpointLoadError, find_layout
from mlkit.endpoint.tfs import TensorFlowServing, TfsReply
from mlkit.schema import DatasetSchema
from training.serving_code import write_serving_code

pytestmark = pytest.mark.unit


class FakeTfs:
    """Records what reaches TF Serving and answers with a fixed reply."""

    def __init__(self, reply: TfsReply) -> None:
        self.reply = reply
        self.calls: list[tuple[str, str, Any]] = []

    def handle(self, method: str, path: str, body: bytes = b"") -> TfsReply:
        self.calls.append((method, path, json.loads(body)))
        return self.reply


OK = TfsReply(200, json.dumps({"outputs": {"probability": [0.75], "label": [1]}}).encode(), predict_us=7)


def service(
    root: Path, tfs: FakeTfs, *, script: str | None = None, schema: DatasetSchema | None = None
) -> ContainerService:
    (root / "1").mkdir(parents=True)
    (root / "1" / "saved_model.pb").write_bytes(b"")
    if schema is not None:
        write_serving_code(root, schema)
    if script is not None:
        (root / "code").mkdir(exist_ok=True)
        (root / "code" / "inference.py").write_text(script, encoding="utf-8")
    return ContainerService(find_layout(root), cast(TensorFlowServing, tfs), "http://127.0.0.1:1")


def headers(content_type: str | None = "application/json", **more: str) -> Headers:
    items = [("Content-Type", content_type)] if content_type else []
    return Headers(items + [(k.replace("_", "-"), v) for k, v in more.items()])


def valid_row(schema: DatasetSchema) -> dict[str, Any]:
    return {c.name: c.categories[0] if c.kind == "categorical" else c.minimum or 0.0 for c in schema.features}


def test_kit_handlers_reach_tf_serving_and_answer(tmp_path: Path, schema: DatasetSchema) -> None:
    tfs = FakeTfs(OK)
    answer = service(tmp_path, tfs, schema=schema).invoke(json.dumps(valid_row(schema)).encode(), headers())
    assert answer.status == 200
    assert json.loads(answer.body) == {"predictions": [{"probability": 0.75, "label": 1}]}
    assert (answer.content_type, answer.predict_us) == ("application/json", 7)
    method, path, body = tfs.calls[0]
    assert (method, path) == ("POST", "/v1/models/model:predict")
    assert set(body["inputs"]) == {c.key for c in schema.features}


def test_custom_attributes_choose_the_tf_serving_uri(tmp_path: Path, schema: DatasetSchema) -> None:
    tfs = FakeTfs(OK)
    attributes = {"X-Amzn-SageMaker-Custom-Attributes": "tfs-model-version=1,tfs-method=predict,other=x"}
    service(tmp_path, tfs, schema=schema).invoke(json.dumps(valid_row(schema)).encode(), headers(**attributes))
    assert tfs.calls[0][1] == "/v1/models/model/versions/1:predict"


def test_request_errors_keep_their_status_and_message(tmp_path: Path, schema: DatasetSchema) -> None:
    tfs = FakeTfs(OK)
    answer = service(tmp_path, tfs, schema=schema).invoke(b"{", headers())
    assert answer.status == 400
    assert json.loads(answer.body)["error"].startswith("request body is not valid JSON")
    assert not tfs.calls


def test_tf_serving_errors_are_passed_on_before_output_handler(tmp_path: Path, schema: DatasetSchema) -> None:
    failing = FakeTfs(TfsReply(400, b'{"error": "input size mismatch"}'))
    answer = service(tmp_path, failing, schema=schema).invoke(json.dumps(valid_row(schema)).encode(), headers())
    assert (answer.status, json.loads(answer.body)) == (400, {"error": "input size mismatch"})


def test_other_handler_failures_are_500_with_the_message(tmp_path: Path) -> None:
    script = (
        "def input_handler(data, context):\n    raise KeyError('boom')\ndef output_handler(data, context):\n    pass\n"
    )
    answer = service(tmp_path, FakeTfs(OK), script=script).invoke(b"{}", headers())
    assert (answer.status, json.loads(answer.body)) == (500, {"error": "'boom'"})


def test_a_handler_function_takes_the_whole_request(tmp_path: Path) -> None:
    script = (
        "def handler(data, context):\n"
        "    return data.read().upper(), context.accept_header + '; seen=' + context.request_content_type\n"
        "def input_handler(data, context):\n    raise AssertionError('ignored when handler exists')\n"
        "def output_handler(data, context):\n    raise AssertionError('ignored when handler exists')\n"
    )
    container = service(tmp_path, FakeTfs(OK), script=script)
    answer = container.invoke(b"abc", headers("text/plain", Accept="text/x"))
    assert (container.mode, answer.status, answer.body, answer.content_type) == (
        "handler",
        200,
        b"ABC",
        "text/x; seen=text/plain",
    )


def test_inference_py_without_handlers_fails_to_load(tmp_path: Path) -> None:
    with pytest.raises(EndpointLoadError, match=r"defines neither handler"):
        service(tmp_path, FakeTfs(OK), script="x = 1\n")


def test_inference_py_that_raises_on_import_fails_to_load(tmp_path: Path) -> None:
    with pytest.raises(EndpointLoadError, match=r"importing .*inference.py failed: ZeroDivisionError"):
        service(tmp_path, FakeTfs(OK), script="1 / 0\n")


def test_code_without_inference_py_sends_the_body_to_tf_serving_unchanged(tmp_path: Path) -> None:
    (tmp_path / "code" / "lib").mkdir(parents=True)
    tfs = FakeTfs(OK)
    container = service(tmp_path, tfs)
    body = json.dumps({"instances": [[1.0]]}).encode()
    answer = container.invoke(body, headers(Accept="application/json"))
    assert (container.mode, answer.status, answer.body) == ("default handler", 200, OK.body)
    assert tfs.calls[0][2] == {"instances": [[1.0]]}
    assert container.invoke(b"x", headers("image/png")).status == 415


@pytest.mark.parametrize(
    ("content_type", "body", "sent"),
    [
        ("application/json", '{"instances": [{"a": 1}]}', {"instances": [{"a": 1}]}),
        ("application/json", '{"a": 1}', {"instances": [{"a": 1}]}),
        ("application/json", "[[1, 2], [3, 4]]", {"instances": [[1, 2], [3, 4]]}),
        ("application/jsonlines", '{"a": 1}\n{"a": 2}\n', {"instances": [{"a": 1}, {"a": 2}]}),
        ("text/csv", "1,2\n3,4\n", {"instances": [[1, 2], [3, 4]]}),
        ("text/csv", "L,2\n", {"instances": [["L", "2"]]}),
    ],
)
def test_without_code_nginx_converts_json_and_csv(tmp_path: Path, content_type: str, body: str, sent: Any) -> None:
    tfs = FakeTfs(OK)
    container = service(tmp_path, tfs)
    answer = container.invoke(body.encode(), headers(content_type))
    assert (container.mode, answer.status) == ("nginx", 200)
    assert tfs.calls[0][2] == sent


def test_without_code_nginx_matches_content_types_verbatim(tmp_path: Path) -> None:
    container = service(tmp_path, FakeTfs(OK))
    for content_type in ("image/png", "application/json; charset=utf-8", None):
        answer = container.invoke(b"{}", headers(content_type))
        assert answer.status == 415
        assert json.loads(answer.body)["error"].startswith("Unsupported Media Type: ")


def test_status_of_reads_status_codes_and_falcon_errors() -> None:
    class CodedError(Exception):
        status_code = 413

    falcon_error = type("HTTPError", (Exception,), {"__module__": "falcon.http_error", "status": "406 Not Acceptable"})
    assert status_of(CodedError()) == 413
    assert status_of(falcon_error()) == 406
    assert status_of(ValueError("plain")) is None
    assert status_of(type("Odd", (Exception,), {"status": "400 x"})()) is None  # not falcon's


def test_handler_module_sees_code_lib_and_leaves_this_process_alone(tmp_path: Path, schema: DatasetSchema) -> None:
    code = write_serving_code(tmp_path, schema)
    schema_copy = code / "lib" / "mlkit" / "schema.py"
    schema_copy.write_text(schema_copy.read_text(encoding="utf-8") + "\nSHIPPED_COPY = True\n", encoding="utf-8")
    (code / "helper.py").write_text("VALUE = 42\n", encoding="utf-8")
    (code / "inference.py").write_text(
        "import helper\nimport mlkit.schema\n"
        "def input_handler(data, context):\n    return helper.VALUE, mlkit.schema.SHIPPED_COPY\n"
        "def output_handler(data, context):\n    pass\n",
        encoding="utf-8",
    )
    path_before, project_schema = list(sys.path), sys.modules["mlkit.schema"]
    first = load_handler_module(code / "inference.py", [code, code / "lib"])
    second = load_handler_module(code / "inference.py", [code, code / "lib"])
    assert first.input_handler(None, None) == (42, True)
    assert first.__name__ != second.__name__
    assert first.__name__ not in sys.modules
    assert sys.modules["mlkit.schema"] is project_schema is mlkit.schema
    assert not hasattr(mlkit.schema, "SHIPPED_COPY")
    assert "helper" not in sys.modules
    assert sys.path == path_before
