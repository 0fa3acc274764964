"""TensorFlow Serving's REST API, in process: a SavedModel's signatures behind ``/v1/models/...``.

What the container's TF Serving answers, reproduced for one model:

* ``GET /v1/models/<name>[/versions/<n>]`` gives the version status (``AVAILABLE``).
* ``POST /v1/models/<name>[/versions/<n>]:predict`` with either
  ``{"instances": [...]}`` (row format; answered ``{"predictions": [...]}``) or
  ``{"inputs": ...}`` (columnar; answered ``{"outputs": ...}``), plus an optional ``signature_name``.
  With several inputs a row is an object keyed by input name; with several outputs a prediction is
  an object keyed by output name, and ``outputs`` is an object too. With one, the bare value is used.
* Failures answer ``{"error": "..."}``: 400 for a request the signature cannot take, 404 for an
  unknown model or version.

Each request's rows are batched into one call of the signature's concrete function (never
``model.predict``). Floats are written the way TF Serving writes float32, with the fewest of 6 or 9
significant digits that read back to the same float32.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from mlkit.endpoint.model_dir import MODEL_NAME, EndpointLoadError, ModelLayout

SIGNATURE = "serving_default"
_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?(?::(?P<method>[A-Za-z]+))?")


class TfsReply(NamedTuple):
    """An answer of the emulated TF Serving.

    Attributes:
        status: HTTP status.
        body: JSON body.
        predict_us: Microseconds spent inside the signature call (0 when it was not called).
    """

    status: int
    body: bytes
    predict_us: int = 0


class _BadRequestError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TensorFlowServing:
    """Serves one SavedModel version with TF Serving's REST semantics.

    Args:
        layout: The validated model directory; its default (highest) version is loaded.

    Raises:
        EndpointLoadError: If the SavedModel cannot be loaded or has no ``serving_default``.
    """

    def __init__(self, layout: ModelLayout) -> None:
        import tensorflow as tf  # heavy: only the serving process needs it

        self._tf = tf
        self.name = MODEL_NAME
        self.version = layout.version
        try:
            # Kept alive: the signatures read variables owned by the loaded object.
            self._root = tf.saved_model.load(str(layout.version_dir))
        except Exception as error:
            raise EndpointLoadError(f"cannot load the SavedModel in {layout.version_dir}: {error}") from error
        signatures = dict(self._root.signatures)
        if SIGNATURE not in signatures:
            raise EndpointLoadError(
                f"the SavedModel in {layout.version_dir} has no {SIGNATURE!r} signature (has {sorted(signatures)})"
            )
        # Concrete functions may be called from many threads at once.
        self._signatures: dict[str, Any] = signatures

    @property
    def signature_names(self) -> list[str]:
        """Names of the model's signatures."""
        return sorted(self._signatures)

    def handle(self, method: str, path: str, body: bytes = b"") -> TfsReply:
        """Answer one REST request.

        Args:
            method: ``GET`` or ``POST``.
            path: The URL path, e.g. ``/v1/models/model:predict``.
            body: The request body (``POST``).

        Returns:
            The reply; never raises for a bad request.
        """
        match = _PATH.fullmatch(path)
        if match is None:
            return _error(404, f"Malformed request: {method} {path}")
        name, version, verb = match["name"], match["version"], match["method"]
        if name != self.name or (version is not None and int(version) != self.version):
            wanted = f"Specific({name}, {int(version)})" if version is not None else f"Latest({name})"
            return _error(404, f"Servable not found for request: {wanted}")
        if method == "GET" and verb is None:
            return self.status()
        if method == "POST" and verb == "predict":
            return self.predict(body)
        if method == "POST" and verb in ("classify", "regress"):
            return _error(400, f"the endpoint emulation serves predict only, not {verb}")
        return _error(404, f"Malformed request: {method} {path}")

    def status(self) -> TfsReply:
        """The model status document (``GET /v1/models/<name>``)."""
        state = {
            "version": str(self.version),
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        return TfsReply(200, json.dumps({"model_version_status": [state]}).encode())

    def predict(self, body: bytes) -> TfsReply:
        """Answer a predict request body (row or columnar format)."""
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _error(400, f"JSON Parse error: {error}")
        if not isinstance(document, dict):
            return _error(400, "JSON Value is not an object")
        try:
            name = document.get("signature_name", SIGNATURE)
            signature = self._signatures.get(name)
            if signature is None:
                raise _BadRequestError(f"Serving signature name: {name!r} not found in signature def")
            specs: Mapping[str, Any] = signature.structured_input_signature[1]
            row_format = _check_format(document)
            columns = _rows_to_columns(document["instances"], specs) if row_format else _inputs(document, specs)
            tensors = {key: self._tensor(columns[key], spec, key) for key, spec in specs.items()}
            started = time.perf_counter_ns()
            try:
                outputs = signature(**tensors)
            except self._tf.errors.InvalidArgumentError as error:
                raise _BadRequestError(_op_error(error.message)) from None
            except (ValueError, TypeError) as error:
                raise _BadRequestError(_first_line(error)) from None
            predict_us = (time.perf_counter_ns() - started) // 1000
            answer = _row_answer(outputs) if row_format else _columnar_answer(outputs)
        except _BadRequestError as error:
            return _error(error.status, str(error))
        return TfsReply(200, json.dumps(answer).encode(), predict_us)

    def _tensor(self, value: Any, spec: Any, key: str) -> Any:
        tf = self._tf
        try:
            tensor = tf.constant(value, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            problem = _first_line(error)
            raise _BadRequestError(f"input {key!r}: cannot convert to {spec.dtype.name}: {problem}") from None
        if not spec.shape.is_compatible_with(tensor.shape):
            shape = tensor.shape.as_list()
            raise _BadRequestError(f"input {key!r} has shape {shape}, the signature takes {spec.shape}")
        return tensor


def _check_format(document: Mapping[str, Any]) -> bool:
    """Return True for the row format (``instances``), False for columnar (``inputs``)."""
    if "instances" in document and "inputs" in document:
        raise _BadRequestError("Not allowed to specify both 'instances' and 'inputs'")
    if "instances" not in document and "inputs" not in document:
        raise _BadRequestError("Missing 'inputs' or 'instances' key")
    return "instances" in document


def _rows_to_columns(instances: Any, specs: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(instances, list) or not instances:
        raise _BadRequestError("'instances' must be a non-empty list")
    names = list(specs)
    if len(names) == 1 and not all(isinstance(row, dict) for row in instances):
        return {names[0]: instances}  # one input: each instance is the bare value
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, row in enumerate(instances):
        if not isinstance(row, dict):
            raise _BadRequestError(f"instance {index} must be an object keyed by input name ({', '.join(names)})")
        missing = [name for name in names if name not in row]
        if missing:
            raise _BadRequestError(f"instance {index} is missing input(s) {missing}")
        unknown = sorted(set(row) - set(names))
        if unknown:
            raise _BadRequestError(f"instance {index} has unknown input(s) {unknown}")
        for name in names:
            columns[name].append(row[name])
    return columns


def _inputs(document: Mapping[str, Any], specs: Mapping[str, Any]) -> dict[str, Any]:
    inputs = document["inputs"]
    names = list(specs)
    if len(names) == 1 and not (isinstance(inputs, dict) and names[0] in inputs):
        return {names[0]: inputs}
    if not isinstance(inputs, dict):
        raise _BadRequestError(f"'inputs' must be an object keyed by input name ({', '.join(names)})")
    missing = [name for name in names if name not in inputs]
    if missing:
        raise _BadRequestError(f"'inputs' is missing input(s) {missing}")
    unknown = sorted(set(inputs) - set(names))
    if unknown:
        raise _BadRequestError(f"'inputs' has unknown input(s) {unknown}")
    return dict(inputs)


def _row_answer(outputs: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: _json_value(tensor.numpy()) for name, tensor in outputs.items()}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    sizes = {name: len(value) if isinstance(value, list) else None for name, value in values.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise _BadRequestError(f"outputs differ in batch size {sizes}; use the columnar 'inputs' format", 500)
    rows = next(iter(sizes.values())) or 0
    return {"predictions": [{name: value[i] for name, value in values.items()} for i in range(rows)]}


def _columnar_answer(outputs: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: _json_value(tensor.numpy()) for name, tensor in outputs.items()}
    return {"outputs": next(iter(values.values())) if len(values) == 1 else values}


def _json_value(array: np.ndarray[Any, Any]) -> Any:
    """Convert an output array to JSON values the way TF Serving writes them."""
    if array.dtype == np.float32:
        flat: list[Any] = [_float32(v) for v in array.reshape(-1).tolist()]
    elif array.dtype.kind in ("O", "S"):
        flat = [_text(v) for v in array.reshape(-1).tolist()]
    else:
        flat = array.reshape(-1).tolist()
    return _reshape(flat, array.shape)


def _reshape(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _float32(value: float) -> float:
    # TF Serving prints float32 with 6 significant digits when that reads back exactly, else 9.
    short = float(f"{value:.6g}")
    return short if np.float32(short) == np.float32(value) else float(f"{value:.9g}")


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _op_error(message: str) -> str:
    """The cause in a TF runtime error ("Incompatible shapes: [2] vs. [3]"), without its graph context."""
    lines = [line.strip() for line in message.splitlines()]
    causes = [
        line
        for line in lines
        if line and not line.startswith(("Graph execution error", "Detected at node", "<stack traces", "[[", "File "))
    ]
    return causes[-1] if causes else lines[0]


def _error(status: int, message: str) -> TfsReply:
    return TfsReply(status, json.dumps({"error": message}).encode())
