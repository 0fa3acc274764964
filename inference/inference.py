"""Pre- and post-processing handlers for the SageMaker TensorFlow Serving container.

This file ships as ``code/inference.py`` inside ``model.tar.gz``. For every ``POST /invocations`` the
container's Python service calls :func:`input_handler` with the request body stream and its ``Context``
(``request_content_type``, ``accept_header``, ``content_length``, ``rest_uri`` ...), posts the string it
returns to TensorFlow Serving's REST predict API, and answers the client with what
:func:`output_handler` makes of TF Serving's response. ``mlkit.endpoint_server`` calls them the same way.

It must stay self-contained: the container has the standard library, ``code/lib`` on ``sys.path``
(holding the stdlib-only :mod:`mlkit.schema`) and ``code/schema.json`` beside this file. No numpy, no
TensorFlow. Every value is checked with :meth:`mlkit.schema.Column.parse`, the rule preprocessing uses.

Requests (``Content-Type``); features are named by their raw column names, e.g. ``"Torque [Nm]"``:

``application/json``
    One object ``{"Type": "L", "Air temperature [K]": 298.1, ...}`` or a list of such objects. TF
    Serving's own ``{"instances": [{...}, ...]}`` and ``{"inputs": {"Type": [...], ...}}`` are accepted
    too. A feature may also be named by its model key (``"torque_nm"``). Other keys are ignored.
``text/csv``
    One row per line, values in the schema's feature order. A first line naming the columns (any
    order, extra columns such as the id ignored) is recognised as a header.
``application/jsonlines``
    One JSON object per line (``application/jsons`` and ``application/x-jsonlines`` are aliases).

Responses (``Accept``; ``application/json`` when absent or ``*/*``), one prediction per row in order:

``application/json``
    ``{"predictions": [{"probability": 0.93, "label": 1}, ...]}``
``text/csv``
    ``0.93,1`` lines; ``text/csv;header=present`` (RFC 4180) starts with ``probability,label``.
``application/jsonlines``
    ``{"probability": 0.93, "label": 1}`` lines.

Errors: every malformed request raises a :class:`RequestError` whose message names the problem (the
field, the row, the allowed values) and whose ``status_code`` is the HTTP status: 415 unsupported
content type, 406 unsupported ``Accept``, 413 body over 6 MB, 400 for everything else (empty body,
invalid JSON or CSV, missing field, non-numeric or implausible value, unknown category).

How an error reaches the client depends on the host, because the handler contract has no way to
return a status (the handlers return a body and a content type only):

* Inside the real container (``falcon`` importable) the error is re-raised as a ``falcon.HTTPError``
  subclass. Images whose ``python_service.py`` lets ``falcon.HTTPError`` through (the TF 2.20 DLC
  line) answer with that 4xx and ``{"error": message}``. The TF 2.19 image catches every handler
  exception and answers 500 ``{"error": str(exception)}``: the message survives, the status cannot.
* Anywhere else (``mlkit.endpoint_server``, unit tests) the :class:`RequestError` itself propagates;
  the emulation answers with its ``status_code``, as the newer container does with ``falcon.HTTPError``.
"""

from __future__ import annotations

# No dataclasses here: the container executes this file without registering it in sys.modules, and
# dataclasses look their module up there (it fails with string annotations).
import csv
import importlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from mlkit.schema import Column, DatasetSchema

#: Where the model's dataset schema sits inside ``model.tar.gz`` (``code/schema.json``).
SCHEMA_FILE = Path(__file__).with_name("schema.json")
#: SageMaker caps an InvokeEndpoint payload at 6 MB.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024

JSON = "application/json"
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
JSON_LINES_ALIASES = ("application/jsons", "application/x-jsonlines")

#: Outputs of the model's ``serving_default`` signature (the model contract, not dataset columns).
PROBABILITY = "probability"
LABEL = "label"


# ---- errors -------------------------------------------------------------------------------------


class ServingError(Exception):
    """A request could not be served; ``status_code`` is the HTTP status to answer with.

    Args:
        message: What went wrong, for the client.
        status_code: Overrides the class default.
    """

    status_code = 500

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code

    @property
    def message(self) -> str:
        """The message for the client."""
        return str(self.args[0])


class RequestError(ServingError, ValueError):
    """The request is malformed (HTTP 400 unless a subclass says otherwise)."""

    status_code = 400


class UnsupportedMediaTypeError(RequestError):
    """The request's ``Content-Type`` has no decoder."""

    status_code = 415


class NotAcceptableError(RequestError):
    """No encoder matches the request's ``Accept`` header."""

    status_code = 406


class PayloadTooLargeError(RequestError):
    """The body exceeds :data:`MAX_PAYLOAD_BYTES`."""

    status_code = 413


class ModelServerError(ServingError):
    """TensorFlow Serving failed or answered something other than the model contract."""

    status_code = 502


# ---- the host's view of the handlers ------------------------------------------------------------


class _Context(Protocol):
    """The fields of the container's ``Context`` named tuple that these handlers read."""

    @property
    def request_content_type(self) -> str | None: ...

    @property
    def accept_header(self) -> str | None: ...

    @property
    def content_length(self) -> int | None: ...


class _Response(Protocol):
    """The parts of the ``requests.Response`` from TF Serving that :func:`output_handler` reads."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


def _container_error_class() -> type[Exception] | None:
    """Return an exception class the container's falcon app turns into an HTTP status, or ``None``.

    Why: the container's ``python_service.py`` swallows every handler exception into a 500, except
    (in the TF 2.20 DLC line) ``falcon.HTTPError``, which falcon renders with its own status. ``falcon``
    exists only inside the container, so the class is built only there.
    """
    try:
        falcon = importlib.import_module("falcon")
    except ImportError:
        return None

    class ContainerHTTPError(falcon.HTTPError):  # type: ignore[misc,name-defined]
        def __init__(self, error: ServingError) -> None:
            super().__init__(falcon.code_to_http_status(error.status_code), description=error.message)
            self.status_code = error.status_code

        def __str__(self) -> str:
            # The TF 2.19 image answers 500 {"error": str(exception)}: keep the message readable there.
            return str(self.description)

        def to_dict(self, obj_type: Callable[[], Any] = dict) -> Any:
            # Same body as every other error of the endpoint, instead of falcon's title/description.
            body = obj_type()
            body["error"] = self.description
            return body

    return ContainerHTTPError


_CONTAINER_ERROR = _container_error_class()


def _for_host(error: ServingError) -> Exception:
    return error if _CONTAINER_ERROR is None else _CONTAINER_ERROR(error)


# ---- media types --------------------------------------------------------------------------------


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    """Split ``'text/csv; charset=utf-8'`` into ``('text/csv', {'charset': 'utf-8'})``."""
    media, *raw_params = header.split(";")
    params = {}
    for raw in raw_params:
        name, _, value = raw.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), params


def _negotiate(accept: str | None) -> tuple[str, dict[str, str]]:
    """Pick the response media type for an ``Accept`` header (highest ``q`` first, then order)."""
    if not accept or not accept.strip():
        return JSON, {}
    wildcards = {"*/*": JSON, "application/*": JSON, "text/*": CSV}
    candidates = []
    for order, part in enumerate(accept.split(",")):
        media, params = _media_type(part)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        target = media if media in _ENCODERS else wildcards.get(media)
        if media in JSON_LINES_ALIASES:
            target = JSON_LINES
        if target and quality > 0:
            candidates.append((-quality, order, target, params))
    if not candidates:
        raise NotAcceptableError(f"cannot answer with Accept {accept!r}; supported: {', '.join(_ENCODERS)}")
    _, _, target, params = min(candidates)
    return target, params


# ---- decoding requests --------------------------------------------------------------------------

#: One request row before validation: where it came from (for messages) and its values by name.
_Record = tuple[str, Mapping[str, Any]]


class RequestCodec:
    """Turns request bodies into TF Serving requests and TF Serving responses into answers.

    Args:
        schema: The dataset schema the model was trained with; it names and checks the features.
    """

    def __init__(self, schema: DatasetSchema) -> None:
        self.schema = schema
        self.features: list[Column] = schema.features
        # A header line is recognised by any known column name (the id column counts too).
        self._known_names = {*schema.column_names, *(c.key for c in self.features)}

    # -- request side

    def decode(self, body: bytes, content_type: str | None) -> dict[str, list[Any]]:
        """Decode and validate a request body into one list of parsed values per feature key.

        Args:
            body: The raw request body.
            content_type: The request's ``Content-Type`` (``application/json`` when ``None``).

        Returns:
            ``{Column.key: [value per row]}``, floats for numeric features, strings for categorical.

        Raises:
            RequestError: Naming the first problem found.
        """
        media, params = _media_type(content_type or JSON)
        if media in JSON_LINES_ALIASES:
            media = JSON_LINES
        decoder = _DECODERS.get(media)
        if decoder is None:
            raise UnsupportedMediaTypeError(
                f"unsupported content type {content_type!r}; send one of {', '.join(_DECODERS)}"
            )
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
            raise UnsupportedMediaTypeError(f"unsupported charset {charset!r}; send UTF-8")
        if not body.strip():
            raise RequestError("request body is empty")
        try:
            text = body.decode("utf-8-sig")  # -sig: tolerate the BOM spreadsheet exports put first
        except UnicodeDecodeError as error:
            raise RequestError(f"request body is not valid UTF-8 (byte {error.start})") from None
        records = list(decoder(self, text))
        if not records:
            raise RequestError("request holds no rows")
        return self._columns(records)

    def tfs_request(self, columns: Mapping[str, list[Any]]) -> str:
        """Return the TF Serving predict request (columnar ``inputs``) for decoded columns."""
        # ASCII-only JSON: requests/http.client would encode a str body as latin-1.
        return json.dumps({"inputs": dict(columns)})

    def _columns(self, records: Iterable[_Record]) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {c.key: [] for c in self.features}
        for where, record in records:
            for column in self.features:
                if column.name in record:
                    raw = record[column.name]
                elif column.key in record:
                    raw = record[column.key]
                else:
                    raise RequestError(f"{where}: missing field {column.name!r}")
                try:
                    value = column.parse(raw)
                except ValueError as error:
                    raise RequestError(f"{where}: {error}") from None
                columns[column.key].append(float(value) if column.kind != "categorical" else value)
        return columns

    def _json(self, text: str) -> Iterator[_Record]:
        document = _load_json(text, "request body")
        if isinstance(document, dict) and ("instances" in document or "inputs" in document):
            yield from self._tfs_json(document)
        elif isinstance(document, dict):
            yield "row 1", document
        elif isinstance(document, list):
            yield from _objects(document, "row")
        else:
            raise RequestError(f"JSON body must be an object or a list of objects, got {type(document).__name__}")

    def _tfs_json(self, document: Mapping[str, Any]) -> Iterator[_Record]:
        if "instances" in document and "inputs" in document:
            raise RequestError("JSON body has both 'instances' and 'inputs'; send one")
        if "instances" in document:
            instances = document["instances"]
            if not isinstance(instances, list):
                raise RequestError("'instances' must be a list of objects")
            yield from _objects(instances, "instance")
            return
        inputs = document["inputs"]
        if not isinstance(inputs, dict):
            raise RequestError("'inputs' must be an object of feature name -> list of values")
        lists = {name: value if isinstance(value, list) else [value] for name, value in inputs.items()}
        lengths = {len(value) for value in lists.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{name!r}: {len(value)}" for name, value in lists.items())
            raise RequestError(f"'inputs' lists differ in length ({sizes})")
        rows = lengths.pop() if lengths else 0
        for index in range(rows):
            yield f"row {index + 1}", {name: value[index] for name, value in lists.items()}

    def _json_lines(self, text: str) -> Iterator[_Record]:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            document = _load_json(line, f"line {number}")
            if not isinstance(document, dict):
                raise RequestError(f"line {number} must be a JSON object, got {type(document).__name__}")
            yield f"line {number}", document

    def _csv(self, text: str) -> Iterator[_Record]:
        reader = csv.reader(io.StringIO(text, newline=""))
        expected = [c.name for c in self.features]
        header: list[str] | None = None
        first = True
        try:
            for cells in reader:
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # blank line
                where = f"line {reader.line_num}"
                if first:
                    first = False
                    stripped = [cell.strip() for cell in cells]
                    if self._known_names.intersection(stripped):
                        header = self._check_header(stripped)
                        continue
                if header is not None and len(cells) != len(header):
                    raise RequestError(f"{where} has {len(cells)} values but the header names {len(header)}")
                if header is None and len(cells) != len(expected):
                    raise RequestError(
                        f"{where} has {len(cells)} values, expected {len(expected)} ({', '.join(expected)})"
                    )
                yield where, dict(zip(header or expected, cells, strict=True))
        except csv.Error as error:
            raise RequestError(f"malformed CSV at line {reader.line_num}: {error}") from None

    def _check_header(self, names: list[str]) -> list[str]:
        wanted = {c.name for c in self.features} | {c.key for c in self.features}
        duplicates = sorted({n for n in names if n in wanted and names.count(n) > 1})
        if duplicates:
            raise RequestError(f"CSV header repeats column(s) {', '.join(map(repr, duplicates))}")
        missing = [c.name for c in self.features if c.name not in names and c.key not in names]
        if missing:
            raise RequestError(f"CSV header lacks column(s) {', '.join(map(repr, missing))}")
        return names

    # -- response side

    def predictions(self, response: _Response) -> list[tuple[float, int]]:
        """Read ``(probability, label)`` pairs from TF Serving's predict response.

        Raises:
            ModelServerError: If TF Serving failed or its answer lacks the model's outputs.
        """
        text = response.content.decode("utf-8", "replace")
        if response.status_code != 200:
            status = response.status_code if response.status_code >= 400 else 502
            raise ModelServerError(f"TensorFlow Serving answered {response.status_code}: {_tfs_error(text)}", status)
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise ModelServerError(f"TensorFlow Serving answered invalid JSON: {text[:200]!r}") from None
        if isinstance(document, dict) and isinstance(document.get("outputs"), dict):  # columnar request
            outputs = document["outputs"]
            missing = [name for name in (PROBABILITY, LABEL) if name not in outputs]
            if missing:
                raise ModelServerError(f"the model's outputs lack {missing}; it has {sorted(outputs)}")
            probabilities, labels = outputs[PROBABILITY], outputs[LABEL]
            if not (isinstance(probabilities, list) and isinstance(labels, list) and len(probabilities) == len(labels)):
                raise ModelServerError(f"the model's {PROBABILITY!r} and {LABEL!r} outputs differ in shape")
            pairs = list(zip(probabilities, labels, strict=True))
        elif isinstance(document, dict) and isinstance(document.get("predictions"), list):  # row request
            rows = document["predictions"]
            if not all(isinstance(row, dict) and PROBABILITY in row and LABEL in row for row in rows):
                raise ModelServerError(f"predictions must be objects with {PROBABILITY!r} and {LABEL!r}")
            pairs = [(row[PROBABILITY], row[LABEL]) for row in rows]
        else:
            raise ModelServerError(f"unexpected TensorFlow Serving response: {text[:200]!r}")
        try:
            return [(float(_scalar(p)), int(_scalar(label))) for p, label in pairs]
        except (TypeError, ValueError):
            raise ModelServerError(f"the model's {PROBABILITY!r} and {LABEL!r} must be numbers") from None

    def encode(self, predictions: list[tuple[float, int]], accept: str | None) -> tuple[str, str]:
        """Render predictions for the ``Accept`` header; return ``(body, content type)``."""
        media, params = _negotiate(accept)
        return _ENCODERS[media](predictions, params), media


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise RequestError(f"{what} is not valid JSON: {error.msg} ({where})") from None


def _objects(items: list[Any], noun: str) -> Iterator[_Record]:
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise RequestError(f"{noun} {index} must be an object keyed by feature name, got {type(item).__name__}")
        yield f"{noun} {index}", item


def _scalar(value: Any) -> Any:
    # A model exported with shape [None, 1] answers [[p], ...]; the contract is [None].
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _tfs_error(text: str) -> str:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text[:500]
    return str(document.get("error", document)) if isinstance(document, dict) else text[:500]


def _encode_json(predictions: list[tuple[float, int]], params: Mapping[str, str]) -> str:
    return json.dumps({"predictions": [{PROBABILITY: p, LABEL: label} for p, label in predictions]})


def _encode_json_lines(predictions: list[tuple[float, int]], params: Mapping[str, str]) -> str:
    return "".join(json.dumps({PROBABILITY: p, LABEL: label}) + "\n" for p, label in predictions)


def _encode_csv(predictions: list[tuple[float, int]], params: Mapping[str, str]) -> str:
    # No header by default: Batch Transform joins output lines to input lines one to one.
    header = f"{PROBABILITY},{LABEL}\n" if params.get("header", "").lower() == "present" else ""
    return header + "".join(f"{p!r},{label}\n" for p, label in predictions)


#: Request decoders by media type.
_DECODERS: dict[str, Callable[[RequestCodec, str], Iterator[_Record]]] = {
    JSON: RequestCodec._json,
    CSV: RequestCodec._csv,
    JSON_LINES: RequestCodec._json_lines,
}

#: Response encoders by media type.
_ENCODERS: dict[str, Callable[[list[tuple[float, int]], Mapping[str, str]], str]] = {
    JSON: _encode_json,
    CSV: _encode_csv,
    JSON_LINES: _encode_json_lines,
}


# ---- the container's entry points ---------------------------------------------------------------


def load_schema(path: Path = SCHEMA_FILE) -> DatasetSchema:
    """Load ``code/schema.json``; from a repository checkout (no such file), the kit's default schema."""
    return DatasetSchema.load(path if path.is_file() else None)


#: Built at import so that a broken schema fails the container's start, not the first request.
CODEC = RequestCodec(load_schema())


def read_body(data: Any, content_length: int | None) -> bytes:
    """Read at most :data:`MAX_PAYLOAD_BYTES` of the request body.

    Args:
        data: The body stream the container passes (anything with ``read(size)``), or bytes/str.
        content_length: The request's ``Content-Length`` when known.

    Raises:
        PayloadTooLargeError: If the body is larger than the cap (without reading past it).
    """
    limit = f"the {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB payload limit"
    if content_length is not None and content_length > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"request body of {content_length} bytes exceeds {limit}")
    if isinstance(data, str):
        body = data.encode("utf-8")
    elif isinstance(data, bytes | bytearray):
        body = bytes(data)
    else:
        body = data.read(MAX_PAYLOAD_BYTES + 1) or b""
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"request body exceeds {limit}")
    return body


def input_handler(data: Any, context: _Context) -> str:
    """Turn an ``/invocations`` request into a TF Serving predict request.

    Args:
        data: The request body stream (``read()`` gives bytes).
        context: The container's ``Context``; ``request_content_type``, ``accept_header`` and
            ``content_length`` are read.

    Returns:
        The JSON body for TF Serving's REST predict API: ``{"inputs": {feature key: [values]}}``.

    Raises:
        RequestError: (or its container form, see the module docstring) naming the problem.
    """
    try:
        _negotiate(context.accept_header)  # answer 406 before spending model time
        body = read_body(data, context.content_length)
        return CODEC.tfs_request(CODEC.decode(body, context.request_content_type))
    except ServingError as error:
        raise _for_host(error) from error


def output_handler(data: _Response, context: _Context) -> tuple[str, str]:
    """Turn TF Serving's response into the answer for the client.

    Args:
        data: TF Serving's response (a ``requests.Response``: ``status_code``, ``content`` ...).
        context: The container's ``Context``; ``accept_header`` picks the format.

    Returns:
        ``(body, content type)``.

    Raises:
        ModelServerError: If TF Serving failed (its status and error are passed on).
        NotAcceptableError: If the ``Accept`` header names no supported format.
    """
    try:
        return CODEC.encode(CODEC.predictions(data), context.accept_header)
    except ServingError as error:
        raise _for_host(error) from error


__all__ = [
    "CODEC",
    "CSV",
    "JSON",
    "JSON_LINES",
    "MAX_PAYLOAD_BYTES",
    "ModelServerError",
    "NotAcceptableError",
    "PayloadTooLargeError",
    "RequestCodec",
    "RequestError",
    "ServingError",
    "UnsupportedMediaTypeError",
    "input_handler",
    "load_schema",
    "output_handler",
    "read_body",
]
