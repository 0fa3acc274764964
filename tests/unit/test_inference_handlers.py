"""inference/inference.py called directly, as the container calls it, with a fake context and response."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import sys
import types
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from inference import inference
from inference.inference import (
    MAX_PAYLOAD_BYTES,
    ModelServerError,
    NotAcceptableError,
    PayloadTooLargeError,
    RequestCodec,
    RequestError,
    UnsupportedMediaTypeError,
    input_handler,
    output_handler,
)
from mlkit.endpoint.container import Context, TfsResponse
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.unit

INFERENCE_PY = Path(inference.__file__)


def context(
    content_type: str | None = "application/json", accept: str | None = None, length: int | None = None
) -> Context:
    """The container's Context for a request (the container defaults both headers to JSON)."""
    return Context(
        model_name=None,
        model_version=None,
        method=None,
        rest_uri="http://localhost:8501/v1/models/model:predict",
        grpc_port="9000",
        channel=None,
        custom_attributes=None,
        request_content_type=content_type or "application/json",
        accept_header=accept or "application/json",
        content_length=length,
    )


def record(schema: DatasetSchema, shift: float = 0.0) -> dict[str, Any]:
    """A valid record of raw feature values keyed by column name: numbers mid-range plus ``shift``."""
    values: dict[str, Any] = {}
    for column in schema.features:
        if column.kind == "categorical":
            values[column.name] = column.categories[0]
        else:
            low, high = column.minimum or 0.0, column.maximum or 1.0
            values[column.name] = round((low + high) / 2 + shift, 1)
    return values


def decoded(body: str | bytes, content_type: str = "application/json") -> dict[str, list[Any]]:
    request = input_handler(io.BytesIO(body.encode() if isinstance(body, str) else body), context(content_type))
    document = json.loads(request)
    assert set(document) == {"inputs"}
    inputs: dict[str, list[Any]] = document["inputs"]
    return inputs


def columns_of(schema: DatasetSchema, *records: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        c.key: [r[c.name] if c.kind == "categorical" else float(r[c.name]) for r in records] for c in schema.features
    }


def csv_text(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


# ---- requests that decode -----------------------------------------------------------------------


def test_json_object_becomes_a_columnar_tf_serving_request(schema: DatasetSchema) -> None:
    row = record(schema)
    assert decoded(json.dumps(row)) == columns_of(schema, row)


def test_json_list_keeps_row_order(schema: DatasetSchema) -> None:
    rows = [record(schema), record(schema, shift=1.5)]
    assert decoded(json.dumps(rows)) == columns_of(schema, *rows)


def test_json_ignores_extra_keys_and_accepts_model_keys_and_numeric_strings(schema: DatasetSchema) -> None:
    row = record(schema)
    sent = {schema.id_column: 17, "comment": "x"}
    sent.update({c.key if i % 2 else c.name: str(row[c.name]) for i, c in enumerate(schema.features)})
    assert decoded(json.dumps(sent)) == columns_of(schema, row)


def test_tf_serving_instances_and_inputs_pass_through_validation(schema: DatasetSchema) -> None:
    rows = [record(schema), record(schema, shift=1.5)]
    expected = columns_of(schema, *rows)
    assert decoded(json.dumps({"instances": rows})) == expected
    inputs = {c.key: [r[c.name] for r in rows] for c in schema.features}
    assert decoded(json.dumps({"inputs": inputs})) == expected


def test_csv_without_header_is_in_feature_order(schema: DatasetSchema) -> None:
    rows = [record(schema), record(schema, shift=1.5)]
    body = csv_text([[r[c.name] for c in schema.features] for r in rows])
    assert decoded(body, "text/csv") == columns_of(schema, *rows)


def test_csv_header_may_reorder_and_add_columns(schema: DatasetSchema) -> None:
    rows = [record(schema), record(schema, shift=1.5)]
    names = [schema.id_column, *reversed([c.name for c in schema.features]), "note"]
    lines = [names] + [[i, *reversed([r[c.name] for c in schema.features]), "x,y"] for i, r in enumerate(rows)]
    assert decoded(csv_text(lines), "text/csv") == columns_of(schema, *rows)


def test_csv_tolerates_bom_crlf_blank_lines_and_charset(schema: DatasetSchema) -> None:
    row = record(schema)
    header = ",".join(c.name for c in schema.features)
    values = ",".join(str(row[c.name]) for c in schema.features)
    body = ("\ufeff" + header + "\r\n\r\n" + values + "\r\n").encode()
    assert decoded(body, "text/csv; charset=UTF-8") == columns_of(schema, row)


def test_json_lines_skip_blank_lines_and_accept_aliases(schema: DatasetSchema) -> None:
    rows = [record(schema), record(schema, shift=1.5)]
    body = "\n".join(json.dumps(r) for r in rows) + "\n\n"
    for content_type in ("application/jsonlines", "application/jsons", "application/x-jsonlines"):
        assert decoded(body, content_type) == columns_of(schema, *rows)


def test_codec_follows_the_schema_it_is_given() -> None:
    custom = DatasetSchema.from_dict(
        {
            "name": "pumps",
            "id_column": "id",
            "label": "broken",
            "columns": [
                {"name": "id", "kind": "integer"},
                {"name": "Flow (l/s)", "kind": "numeric", "min": 0, "feature": True},
                {"name": "Site", "kind": "categorical", "categories": ["north", "south"], "feature": True},
                {"name": "broken", "kind": "binary"},
            ],
        }
    )
    codec = RequestCodec(custom)
    assert codec.decode(b"1.5,south\n", "text/csv") == {"flow_l_s": [1.5], "site": ["south"]}
    with pytest.raises(RequestError, match=r"unknown category 'east' for 'Site' \(allowed: north, south\)"):
        codec.decode(b'{"Flow (l/s)": 1, "Site": "east"}', "application/json")


# ---- malformed requests -------------------------------------------------------------------------


def _malformed(schema: DatasetSchema) -> Iterator[tuple[str, str, bytes, int, str]]:
    numeric, category = schema.numeric_features[-1], schema.categorical_features[0]
    row = record(schema)
    without = {k: v for k, v in row.items() if k != numeric.name}
    ordered = [c.name for c in schema.features]
    yield "unsupported content type", "image/png", b"x", 415, r"unsupported content type 'image/png'"
    yield "unsupported charset", "text/csv; charset=latin-1", b"x", 415, r"unsupported charset 'latin-1'"
    yield "empty body", "application/json", b"", 400, r"request body is empty"
    yield "blank body", "text/csv", b" \n ", 400, r"request body is empty"
    yield "bad JSON", "application/json", b'{"a": ', 400, r"request body is not valid JSON: .* \(line 1 column 7\)"
    yield "not UTF-8", "application/json", b'{"a": "\xff"}', 400, r"not valid UTF-8"
    yield "JSON scalar", "application/json", b"42", 400, r"must be an object or a list of objects, got int"
    yield "list of non-objects", "application/json", json.dumps([row, [1]]).encode(), 400, r"row 2 must be an object"
    yield "empty list", "application/json", b"[]", 400, r"request holds no rows"
    yield (
        "missing field",
        "application/json",
        json.dumps(without).encode(),
        400,
        rf"missing field '{re.escape(numeric.name)}'",
    )
    yield (
        "missing field in row 2",
        "application/json",
        json.dumps([row, without]).encode(),
        400,
        rf"row 2: missing field '{re.escape(numeric.name)}'",
    )
    yield "null value", "application/json", json.dumps({**row, numeric.name: None}).encode(), 400, "missing value for"
    yield (
        "non-numeric value",
        "application/json",
        json.dumps([row, {**row, numeric.name: "abc"}]).encode(),
        400,
        rf"row 2: '{re.escape(numeric.name)}' must be a number, got 'abc'",
    )
    yield "boolean value", "application/json", json.dumps({**row, numeric.name: True}).encode(), 400, "must be a number"
    yield (
        "implausible value",
        "application/json",
        json.dumps({**row, numeric.name: -1e9}).encode(),
        400,
        "below the plausible minimum",
    )
    yield (
        "unknown category",
        "application/json",
        json.dumps({**row, category.name: "Q"}).encode(),
        400,
        rf"unknown category 'Q' for '{re.escape(category.name)}' \(allowed: {', '.join(category.categories)}\)",
    )
    yield (
        "CSV row too short",
        "text/csv",
        csv_text([[row[n] for n in ordered], [row[n] for n in ordered[:-1]]]).encode(),
        400,
        rf"line 2 has {len(ordered) - 1} values, expected {len(ordered)} \({re.escape(ordered[0])}",
    )
    yield (
        "CSV non-numeric value",
        "text/csv",
        csv_text([[row[n] if n != numeric.name else "abc" for n in ordered]]).encode(),
        400,
        rf"line 1: '{re.escape(numeric.name)}' must be a number",
    )
    yield (
        "CSV header lacks a feature",
        "text/csv",
        csv_text([ordered[:-1], [row[n] for n in ordered[:-1]]]).encode(),
        400,
        rf"CSV header lacks column\(s\) '{re.escape(ordered[-1])}'",
    )
    yield "CSV header only", "text/csv", csv_text([ordered]).encode(), 400, r"request holds no rows"
    yield (
        "JSON Lines bad line",
        "application/jsonlines",
        (json.dumps(row) + "\n{oops\n").encode(),
        400,
        r"line 2 is not valid JSON",
    )
    yield (
        "instances not a list",
        "application/json",
        json.dumps({"instances": row}).encode(),
        400,
        r"'instances' must be a list",
    )
    yield (
        "inputs of different lengths",
        "application/json",
        json.dumps({"inputs": {c.name: [row[c.name]] * (1 + (c is numeric)) for c in schema.features}}).encode(),
        400,
        r"'inputs' lists differ in length",
    )


MALFORMED = list(_malformed(DatasetSchema.load()))


@pytest.mark.parametrize("malformed", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_request_raises_a_typed_error_naming_the_problem(malformed: tuple[str, str, bytes, int, str]) -> None:
    _, content_type, body, status, message = malformed
    with pytest.raises(RequestError, match=message) as raised:
        input_handler(io.BytesIO(body), context(content_type, length=len(body)))
    assert raised.value.status_code == status
    assert 400 <= status < 500


def test_error_classes_carry_their_status() -> None:
    assert UnsupportedMediaTypeError("x").status_code == 415
    assert NotAcceptableError("x").status_code == 406
    assert PayloadTooLargeError("x").status_code == 413
    assert isinstance(RequestError("x"), ValueError)


def test_unsupported_accept_is_refused_before_decoding(schema: DatasetSchema) -> None:
    body = json.dumps(record(schema)).encode()
    with pytest.raises(NotAcceptableError, match=r"cannot answer with Accept 'image/png'") as raised:
        input_handler(io.BytesIO(body), context(accept="image/png"))
    assert raised.value.status_code == 406


class _CountingStream(io.BytesIO):
    def __init__(self, size: int) -> None:
        super().__init__(b" " * size)
        self.largest_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.largest_read = max(self.largest_read, len(data))
        return data


def test_payload_over_six_megabytes_is_refused_without_reading_it_all() -> None:
    declared = _CountingStream(MAX_PAYLOAD_BYTES + 10)
    with pytest.raises(PayloadTooLargeError, match=r"exceeds the 6 MB payload limit") as raised:
        input_handler(declared, context(length=MAX_PAYLOAD_BYTES + 10))
    assert raised.value.status_code == 413
    assert declared.largest_read == 0  # refused on Content-Length alone
    undeclared = _CountingStream(MAX_PAYLOAD_BYTES + 10)
    with pytest.raises(PayloadTooLargeError):
        input_handler(undeclared, context(length=None))
    assert undeclared.largest_read == MAX_PAYLOAD_BYTES + 1


# ---- responses ----------------------------------------------------------------------------------

PREDICTIONS = {"outputs": {"probability": [0.25, 0.875], "label": [0, 1]}}


def tfs(document: Any, status: int = 200) -> TfsResponse:
    return TfsResponse(status, json.dumps(document).encode(), "http://localhost:8501/v1/models/model:predict")


@pytest.mark.parametrize(
    ("accept", "content_type", "body"),
    [
        (
            None,
            "application/json",
            '{"predictions": [{"probability": 0.25, "label": 0}, {"probability": 0.875, "label": 1}]}',
        ),
        ("*/*", "application/json", None),
        ("application/json; charset=utf-8", "application/json", None),
        ("text/csv", "text/csv", "0.25,0\n0.875,1\n"),
        ("text/csv;header=present", "text/csv", "probability,label\n0.25,0\n0.875,1\n"),
        ("text/*", "text/csv", "0.25,0\n0.875,1\n"),
        (
            "application/jsonlines",
            "application/jsonlines",
            '{"probability": 0.25, "label": 0}\n{"probability": 0.875, "label": 1}\n',
        ),
        ("image/png, text/csv;q=0.5, application/jsonlines;q=0.9", "application/jsonlines", None),
        ("application/json;q=0, text/csv", "text/csv", None),
    ],
)
def test_output_handler_answers_in_the_accepted_format(accept: str | None, content_type: str, body: str | None) -> None:
    answer, answer_type = output_handler(tfs(PREDICTIONS), context(accept=accept))
    assert answer_type == content_type
    if body is not None:
        assert answer == body


def test_output_handler_reads_row_format_answers_too() -> None:
    rows = {"predictions": [{"probability": 0.25, "label": 0}, {"probability": 0.875, "label": 1}]}
    assert output_handler(tfs(rows), context()) == output_handler(tfs(PREDICTIONS), context())


def test_output_handler_refuses_unsupported_accept() -> None:
    with pytest.raises(NotAcceptableError) as raised:
        output_handler(tfs(PREDICTIONS), context(accept="application/xml"))
    assert raised.value.status_code == 406


def test_tf_serving_error_is_raised_with_its_status_and_message() -> None:
    with pytest.raises(ModelServerError, match=r"TensorFlow Serving answered 400: bad input 'x'") as raised:
        output_handler(tfs({"error": "bad input 'x'"}, status=400), context())
    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", r"invalid JSON"),
        (json.dumps({"outputs": {"probability": [0.5]}}).encode(), r"lack \['label'\]"),
        (json.dumps({"outputs": {"probability": [0.5], "label": []}}).encode(), r"differ in shape"),
        (json.dumps({"predictions": [0.5]}).encode(), r"predictions must be objects"),
        (json.dumps({"outputs": {"probability": ["x"], "label": [1]}}).encode(), r"must be numbers"),
    ],
)
def test_unexpected_tf_serving_answers_are_server_errors(content: bytes, message: str) -> None:
    with pytest.raises(ModelServerError, match=message) as raised:
        output_handler(TfsResponse(200, content, "http://x"), context())
    assert raised.value.status_code == 502


# ---- inside the container -----------------------------------------------------------------------


def _load_as_container(name: str = "inference") -> types.ModuleType:
    """Import inference.py like python_service.py: by path, never registered in sys.modules."""
    spec = importlib.util.spec_from_file_location(name, INFERENCE_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_handlers_work_when_imported_the_container_way(schema: DatasetSchema) -> None:
    module = _load_as_container()
    request = module.input_handler(io.BytesIO(json.dumps(record(schema)).encode()), context())
    assert json.loads(request) == {"inputs": columns_of(schema, record(schema))}


def _fake_falcon() -> types.ModuleType:
    """The two falcon 3.1 names the handlers use, with falcon's own behaviour for them."""
    falcon = types.ModuleType("falcon")

    class HTTPError(Exception):
        __slots__ = ("code", "description", "headers", "link", "status", "title")

        def __init__(self, status: str, title: str | None = None, description: str | None = None) -> None:
            self.status, self.title, self.description = status, title or status, description

        def __str__(self) -> str:
            return f"<{type(self).__name__}: {self.status}>"

        def to_dict(self, obj_type: Any = dict) -> Any:
            return obj_type(title=self.title, description=self.description)

    falcon.HTTPError = HTTPError  # type: ignore[attr-defined]
    falcon.code_to_http_status = lambda code: f"{code} {HTTPStatus(code).phrase}"  # type: ignore[attr-defined]
    return falcon


def test_inside_the_container_errors_become_falcon_http_errors(
    schema: DatasetSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    falcon = _fake_falcon()
    monkeypatch.setitem(sys.modules, "falcon", falcon)
    module = _load_as_container()
    bad = json.dumps({**record(schema), schema.categorical_features[0].name: "Q"}).encode()
    with pytest.raises(falcon.HTTPError) as raised:  # type: ignore[attr-defined]
        module.input_handler(io.BytesIO(bad), context())
    error = raised.value
    assert error.status == "400 Bad Request"  # what a TF 2.20 container answers
    assert "unknown category 'Q'" in str(error)  # what the TF 2.19 image puts in its 500 body
    assert error.to_dict() == {"error": str(error)}  # falcon's JSON body for it
    assert isinstance(error.__cause__, module.RequestError)
    assert error.status_code == 400
