"""SageMaker data capture records and their S3 layout (no LocalStack imports).

One JSON line per captured request, under ``<dest>/<endpoint>/<variant>/yyyy/mm/dd/hh/``, exactly as
SageMaker Model Monitor writes and reads them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json",)


def encoding_for(content_type: str, header: Mapping[str, Any] | None) -> str:
    """Return the capture encoding of a payload: ``CSV``, ``JSON`` or ``BASE64``.

    SageMaker stores a payload as text only when its content type is listed in the endpoint config's
    ``CaptureContentTypeHeader``; everything else, and everything when no header is configured, is base64.
    """
    if not header:
        return "BASE64"
    base = content_type.split(";", maxsplit=1)[0].strip().lower()
    if base in (t.lower() for t in header.get("CsvContentTypes") or ()):
        return "CSV"
    if base in (t.lower() for t in header.get("JsonContentTypes") or ()):
        return "JSON"
    return "BASE64"


def payload(data: bytes, content_type: str, mode: str, header: Mapping[str, Any] | None) -> dict[str, str]:
    """Return one ``endpointInput``/``endpointOutput`` entry."""
    encoding = encoding_for(content_type, header)
    text = base64.b64encode(data).decode("ascii") if encoding == "BASE64" else data.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def record(
    *,
    request: bytes,
    request_type: str,
    response: bytes | None,
    response_type: str,
    modes: set[str],
    header: Mapping[str, Any] | None,
    when: datetime,
    event_id: str | None = None,
) -> str:
    """Return one capture line (JSON, no trailing newline).

    Args:
        request: The request body as received.
        request_type: Its content type.
        response: The response body (``None`` when the model failed).
        response_type: Its content type.
        modes: Which of ``INPUT`` and ``OUTPUT`` the endpoint config captures.
        header: The config's ``CaptureContentTypeHeader``.
        when: The inference time (UTC).
        event_id: The request's id (a new UUID by default).
    """
    data: dict[str, Any] = {}
    if "INPUT" in modes:
        data["endpointInput"] = payload(request, request_type, "INPUT", header)
    if "OUTPUT" in modes and response is not None:
        data["endpointOutput"] = payload(response, response_type, "OUTPUT", header)
    line = {
        "captureData": data,
        "eventMetadata": {
            "eventId": event_id or str(uuid.uuid4()),
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        },
        "eventVersion": "0",
    }
    return json.dumps(line, separators=(",", ":"))


def object_key(prefix: str, endpoint: str, variant: str, when: datetime) -> str:
    """Return the key of one capture file: ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<id>.jsonl``."""
    folder = "/".join(p for p in (prefix.strip("/"), endpoint, variant) if p)
    stamp = f"{when:%M-%S}-{when.microsecond // 1000:03d}"
    return f"{folder}/{when:%Y/%m/%d/%H}/{stamp}-{uuid.uuid4()}.jsonl"


def capture_modes(config: Mapping[str, Any]) -> set[str]:
    """Return the capture modes of a ``DataCaptureConfig`` (``INPUT`` and/or ``OUTPUT``)."""
    return {str(option.get("CaptureMode", "")).upper() for option in config.get("CaptureOptions") or ()} or {
        "INPUT",
        "OUTPUT",
    }
