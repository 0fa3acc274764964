"""The request path of the SageMaker TF Serving container: handlers in front of TF Serving.

Reproduces, for one model, what the container's ``python_service.py`` and ``tensorflowServing.js``
(aws/deep-learning-containers, ``tensorflow/inference/docker/build_artifacts/sagemaker/``) do with
``POST /invocations``:

* With ``code/inference.py``: it is imported by file path (never registered in ``sys.modules``), with
  ``code`` and ``code/lib`` on the import path. A ``handler(data, context)`` takes the whole request;
  otherwise ``input_handler(data, context)``'s result is posted to TF Serving and the response goes to
  ``output_handler(response, context)``, whose ``(body, content_type)`` is the answer.
* With ``code/`` but no ``inference.py``: the request body goes to TF Serving unchanged.
* Without ``code/``: nginx converts ``application/json``, ``application/jsonlines``,
  ``application/jsons`` and ``text/csv`` bodies into TF Serving requests and answers 415 otherwise.

Errors, as the container answers them: an exception that carries an HTTP status (``status_code``, or a
``falcon.HTTPError``) is answered with that status; the TF 2.20 container line does so for
``falcon.HTTPError``, while the TF 2.19 image turns it into a 500 like any other exception. Any other
exception gives 500 ``{"error": str(exception)}``. A TF Serving error status is passed on with TF
Serving's body, before ``output_handler`` runs (TF 2.20 line; the 2.19 image hands it to
``output_handler``).
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from mlkit.endpoint.model_dir import MODEL_NAME, EndpointLoadError, ModelLayout
from mlkit.endpoint.tfs import TensorFlowServing, TfsReply

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/json"
DEFAULT_ACCEPT = "application/json"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
#: Seconds the container allows a TF Serving call (``SAGEMAKER_TFS_WAIT_TIME_SECONDS`` default).
TFS_TIMEOUT_S = 60
_NGINX_TYPES = ("application/json", "application/jsonlines", "application/jsons")


class Context(NamedTuple):
    """The container's per-request ``Context`` (fields of the TF 2.20 line, a superset of 2.19's).

    Attributes:
        model_name: ``tfs-model-name`` from the custom attributes header, else ``None``.
        model_version: ``tfs-model-version`` from that header, else ``None``.
        method: ``tfs-method`` from that header, else ``None``.
        rest_uri: TF Serving's REST URL for this request, e.g. ``.../v1/models/model:predict``.
        grpc_port: TF Serving's gRPC port; ``None``: the emulation has no gRPC.
        channel: A gRPC channel; ``None`` in the emulation.
        custom_attributes: The raw ``X-Amzn-SageMaker-Custom-Attributes`` header.
        request_content_type: The request's ``Content-Type`` (``application/json`` when absent).
        accept_header: The request's ``Accept`` (``application/json`` when absent).
        content_length: The request's ``Content-Length``, or ``None``.
        timeout: Seconds allowed for the TF Serving call.
    """

    model_name: str | None
    model_version: str | None
    method: str | None
    rest_uri: str
    grpc_port: str | None
    channel: Any
    custom_attributes: str | None
    request_content_type: str
    accept_header: str
    content_length: int | None
    timeout: int = TFS_TIMEOUT_S


class TfsResponse:
    """What ``output_handler`` receives: the parts of ``requests.Response`` handlers use.

    Args:
        status_code: TF Serving's HTTP status.
        content: TF Serving's body.
        url: The URL that was called.
    """

    def __init__(self, status_code: int, content: bytes, url: str) -> None:
        self.status_code = status_code
        self.content = content
        self.url = url
        self.encoding = "utf-8"
        self.headers = Headers([("Content-Type", "application/json")])
        self.reason = HTTPStatus(status_code).phrase if status_code in HTTPStatus._value2member_map_ else ""

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode(self.encoding, "replace")

    @property
    def ok(self) -> bool:
        """Whether the status is below 400."""
        return self.status_code < 400

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        """Raise ``RuntimeError`` for a 4xx or 5xx status (``requests`` raises ``HTTPError``)."""
        if not self.ok:
            raise RuntimeError(f"{self.status_code} {self.reason} for url: {self.url}: {self.text}")


class Headers(Mapping[str, str]):
    """Read-only HTTP headers with case-insensitive names (``requests``' ``CaseInsensitiveDict``).

    Args:
        items: ``(name, value)`` pairs; a repeated name keeps its first value.
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            self._items.setdefault(name.lower(), (name, value))

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class Invocation(NamedTuple):
    """The container's answer to one ``/invocations`` request.

    Attributes:
        status: HTTP status.
        body: Response body.
        content_type: Response ``Content-Type``.
        predict_us: Microseconds inside the model's signature (0 when it was not called in process).
    """

    status: int
    body: bytes
    content_type: str
    predict_us: int = 0


Handler = Callable[[Any, Context], Any]


class ContainerService:
    """Routes ``/invocations`` requests as the container does for the given model layout.

    Args:
        layout: The validated model directory.
        tfs: The loaded model behind TF Serving's REST API.
        rest_base: Base URL of the emulated TF Serving REST API (``http://host:port``), so that a
            custom ``handler`` can post to ``context.rest_uri``.

    Raises:
        EndpointLoadError: If ``code/inference.py`` cannot be imported or defines no handlers.
    """

    def __init__(self, layout: ModelLayout, tfs: TensorFlowServing, rest_base: str) -> None:
        self.layout = layout
        self.tfs = tfs
        self.rest_base = rest_base.rstrip("/")
        self.handler: Handler | None = None
        self.input_handler: Handler | None = None
        self.output_handler: Handler | None = None
        self.module: ModuleType | None = None
        if layout.requirements is not None:
            # The container pip-installs it (unless code/lib exists); the emulation installs nothing.
            log.warning("%s is not installed by the emulation; the project environment is used", layout.requirements)
        script = layout.inference_script
        if script is not None:
            search = [p for p in (layout.code_dir, layout.lib_dir) if p is not None]
            self.module = load_handler_module(script, search)
            if hasattr(self.module, "handler"):
                self.handler = self.module.handler
            elif hasattr(self.module, "input_handler") and hasattr(self.module, "output_handler"):
                self.input_handler = self.module.input_handler
                self.output_handler = self.module.output_handler
            else:
                raise EndpointLoadError(
                    f"{script} defines neither handler(data, context) nor input_handler and output_handler"
                )

    @property
    def mode(self) -> str:
        """How requests are handled: ``handler``, ``input/output handlers``, ``default handler`` or ``nginx``."""
        if self.handler is not None:
            return "handler"
        if self.input_handler is not None:
            return "input/output handlers"
        return "default handler" if self.layout.uses_python_service else "nginx"

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> Invocation:
        """Answer one ``/invocations`` request; every failure becomes an error response.

        Args:
            body: The request body (already checked against the payload cap).
            headers: The request headers (:class:`Headers`: names are case-insensitive).
        """
        if self.layout.uses_python_service:
            return self._python_service(body, headers)
        return self._nginx(body, headers)

    # ---- the Python service (gunicorn + falcon in the container)

    def _python_service(self, body: bytes, headers: Mapping[str, str]) -> Invocation:
        context = self._context(headers)
        data = io.BytesIO(body)
        timer = _PredictTimer()
        try:
            if self.handler is not None:
                answer, content_type = self.handler(data, context)
            elif self.input_handler is not None and self.output_handler is not None:
                request = self.input_handler(data, context)
                reply = timer.add(self._post_tfs(context.rest_uri, request))
                if reply.status != 200:
                    return Invocation(reply.status, reply.body, "application/json", timer.us)
                response = TfsResponse(reply.status, reply.body, context.rest_uri)
                answer, content_type = self.output_handler(response, context)
            else:
                return self._default_handler(data, context, timer)
            return Invocation(200, _as_bytes(answer), str(content_type), timer.us)
        except Exception as error:  # any handler failure is an answer, never a dead server
            status = status_of(error)
            if status is None:
                log.exception("exception handling request: %s", error)
                status = 500
            else:
                log.info("request rejected with %d: %s", status, error)
            return Invocation(status, _error_body(str(error)), "application/json", timer.us)

    def _default_handler(self, data: io.BytesIO, context: Context, timer: _PredictTimer) -> Invocation:
        media = context.request_content_type.split(";")[0].strip().lower()
        if media and media not in (*_NGINX_TYPES, "text/csv"):
            return Invocation(415, _error_body(f"Unsupported Media Type: {media}"), "application/json")
        reply = timer.add(self._post_tfs(context.rest_uri, data.read()))
        if reply.status != 200:
            return Invocation(reply.status, reply.body, "application/json", timer.us)
        return Invocation(200, reply.body, context.accept_header, timer.us)

    def _context(self, headers: Mapping[str, str]) -> Context:
        attributes = _tfs_attributes(headers.get(CUSTOM_ATTRIBUTES_HEADER))
        raw_length = headers.get("Content-Length")
        return Context(
            model_name=attributes.get("tfs-model-name"),
            model_version=attributes.get("tfs-model-version"),
            method=attributes.get("tfs-method"),
            rest_uri=self._rest_uri(attributes),
            grpc_port=None,
            channel=None,
            custom_attributes=headers.get(CUSTOM_ATTRIBUTES_HEADER),
            request_content_type=headers.get("Content-Type") or DEFAULT_CONTENT_TYPE,
            accept_header=headers.get("Accept") or DEFAULT_ACCEPT,
            content_length=int(raw_length) if raw_length and raw_length.strip().isdigit() else None,
        )

    def _rest_uri(self, attributes: Mapping[str, str]) -> str:
        uri = f"{self.rest_base}/v1/models/{attributes.get('tfs-model-name', MODEL_NAME)}"
        if "tfs-model-version" in attributes:
            uri += f"/versions/{attributes['tfs-model-version']}"
        return f"{uri}:{attributes.get('tfs-method', 'predict')}"

    def _post_tfs(self, uri: str, request: Any) -> TfsReply:
        """``requests.post(context.rest_uri, data=request)``, answered in process."""
        if isinstance(request, str):
            payload = request.encode("utf-8")  # what requests (urllib3 2) sends for a str body
        elif isinstance(request, bytes | bytearray):
            payload = bytes(request)
        else:
            raise TypeError(
                f"input_handler must return the request body as str or bytes, got {type(request).__name__} "
                "(the container would form-encode it)"
            )
        return self.tfs.handle("POST", urlsplit(uri).path, payload)

    # ---- nginx (no code/ in the model)

    def _nginx(self, body: bytes, headers: Mapping[str, str]) -> Invocation:
        content_type = headers.get("Content-Type")
        text = body.decode("utf-8", "replace")
        # nginx compares the header verbatim: "application/json; charset=utf-8" is a 415 there.
        if content_type in _NGINX_TYPES:
            request = _nginx_json(text)
        elif content_type == "text/csv":
            request = _nginx_csv(text)
        else:
            unsupported = f"Unsupported Media Type: {content_type or 'Unknown'}"
            return Invocation(415, _error_body(unsupported), "application/json")
        attributes = _tfs_attributes(headers.get(CUSTOM_ATTRIBUTES_HEADER))
        reply = self.tfs.handle("POST", urlsplit(self._rest_uri(attributes)).path, request.encode())
        answer, answer_type = reply.body, "application/json"
        accept = headers.get("Accept")
        if accept is not None:
            types = [t.strip() for t in accept.split(",")]
            if "application/json" in types or "application/jsonlines" in types:
                answer, answer_type = answer.replace(b"\n", b""), types[0]
        return Invocation(reply.status, answer, answer_type, reply.predict_us)


class _PredictTimer:
    """Adds up the signature time of the TF Serving calls made for one request."""

    def __init__(self) -> None:
        self.us = 0

    def add(self, reply: TfsReply) -> TfsReply:
        self.us += reply.predict_us
        return reply


def status_of(error: BaseException) -> int | None:
    """Return the HTTP status an exception asks for, or ``None`` for a plain failure (a 500).

    ``status_code`` (as :class:`inference.inference.RequestError` has) or a ``falcon.HTTPError``'s
    ``"400 Bad Request"``-style ``status``.
    """
    code = getattr(error, "status_code", None)
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    is_falcon = any(c.__name__ == "HTTPError" and c.__module__.startswith("falcon") for c in type(error).__mro__)
    status = getattr(error, "status", None)
    if is_falcon and isinstance(status, str) and status[:3].isdigit():
        return int(status[:3])
    return None


def _tfs_attributes(header: str | None) -> dict[str, str]:
    """Parse ``tfs-model-name=x,tfs-method=predict`` out of the custom attributes header."""
    if not header:
        return {}
    pairs = (match.split("=", 1) for match in re.findall(r"tfs-[a-z\-]+=[^,]+", header))
    return {key: value for key, value in pairs}


def _nginx_json(text: str) -> str:
    """Convert a JSON body as nginx does: TF Serving bodies pass, JSON Lines and bare JSON become ``instances``."""
    if re.search(r'"(instances|inputs|examples)"\s*:', text):
        return text
    if re.search(r"[}\]]\s*[\[{]", text):  # values separated by whitespace only: JSON Lines
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return '{"instances":' + (lines[0] if len(lines) == 1 else "[" + ",".join(lines) + "]") + "}"
    if not re.match(r"\s*\[\s*\[", text):
        text = f"[{text}]"
    return '{"instances":' + text + "}"


def _nginx_csv(text: str) -> str:
    """Convert a CSV body as nginx does: a line per instance, quoted when the body does not start with a number."""
    quote = re.match(r'\s*("|[\d.Ee+\-]+)', text) is None
    rows = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if quote:
            # nginx escapes the first quote and splits at the first comma only: reproduced as is.
            line = '"' + line.replace('"', '\\"', 1).replace(",", '","', 1) + '"'
        rows.append(f"[{line}]" if "," in raw else line)
    return '{"instances":[' + ",".join(rows) + "]}"


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _as_bytes(answer: Any) -> bytes:
    if isinstance(answer, bytes | bytearray):
        return bytes(answer)
    if isinstance(answer, str):
        return answer.encode("utf-8")
    raise TypeError(f"the handler must return (body, content_type) with a str or bytes body, got {type(answer)}")


# ---- importing code/inference.py -------------------------------------------------------------------

_IMPORT_LOCK = threading.Lock()
_MODULE_NUMBERS = itertools.count(1)


def load_handler_module(script: Path, search_path: Sequence[Path]) -> ModuleType:
    """Import ``code/inference.py`` as the container does, without touching this process's imports.

    The container imports the file by path under the name ``inference`` without registering it in
    ``sys.modules``, with ``code`` and ``code/lib`` on ``PYTHONPATH``. Here it gets a unique name, and
    the modules ``search_path`` provides (``code/lib/mlkit`` shadows this project's ``mlkit``) are
    imported from there for the duration of the import only, then removed again: the handler keeps
    the copies it imported, and the process (or another endpoint in it) keeps its own.

    Args:
        script: ``code/inference.py``.
        search_path: Directories to import from first (``code``, ``code/lib``).

    Returns:
        The executed module.

    Raises:
        EndpointLoadError: If the import fails.
    """
    name = f"mlkit_endpoint_inference_{next(_MODULE_NUMBERS)}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise EndpointLoadError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    with _isolated_imports(search_path):
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise EndpointLoadError(f"importing {script} failed: {type(error).__name__}: {error}") from error
    return module


@contextmanager
def _isolated_imports(search_path: Sequence[Path]) -> Iterator[None]:
    provided = {name for directory in search_path for name in _top_level_names(directory)}

    def ours(module_name: str) -> bool:
        return module_name.partition(".")[0] in provided

    # One import at a time: sys.modules and sys.path are process-wide.
    with _IMPORT_LOCK:
        stashed = {name: module for name, module in sys.modules.items() if ours(name)}
        for name in stashed:
            del sys.modules[name]
        entries = [str(directory) for directory in search_path]
        sys.path[:0] = entries
        importlib.invalidate_caches()
        try:
            yield
        finally:
            for entry in entries:
                sys.path.remove(entry)
            for name in [name for name in sys.modules if ours(name)]:
                del sys.modules[name]
            sys.modules.update(stashed)


def _top_level_names(directory: Path) -> set[str]:
    """Names of the modules and packages importable from ``directory``."""
    names = set()
    for entry in directory.iterdir():
        if entry.name.startswith((".", "__pycache__")):
            continue
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.suffix in (".py", ".pyc", ".so", ".pyd"):
            names.add(entry.name.split(".")[0])
    return names
