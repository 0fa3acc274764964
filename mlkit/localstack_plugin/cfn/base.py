# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""Shared pieces of the kit's resource providers: schemas, type coercion, progress events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent

_HERE = Path(__file__).parent


def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` from this folder (names ``primaryIdentifier`` and create-only properties)."""
    schema: dict[str, Any] = json.loads((_HERE / f"{name}.schema.json").read_text(encoding="utf-8"))
    return schema


def success(model: dict[str, Any], **context: Any) -> ProgressEvent:
    """Return a finished event with the resource's model."""
    return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model, custom_context=context)


def in_progress(model: dict[str, Any], **context: Any) -> ProgressEvent:
    """Return an event that makes LocalStack call the handler again (about once a second)."""
    return ProgressEvent(status=OperationStatus.IN_PROGRESS, resource_model=model, custom_context=context)


def failed(model: dict[str, Any], message: str) -> ProgressEvent:
    """Return a failed event; CloudFormation shows ``message`` as the resource's status reason."""
    return ProgressEvent(status=OperationStatus.FAILED, resource_model=model, message=message)


def pick(model: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """Return the entries of ``model`` named in ``keys`` that are set."""
    return {k: model[k] for k in keys if model.get(k) is not None}


def as_int(value: Any) -> int:
    """Template values may arrive as strings ("1"); the APIs want numbers."""
    return int(float(value))


def as_float(value: Any) -> float:
    """See :func:`as_int`."""
    return float(value)


def as_bool(value: Any) -> bool:
    """Template booleans may arrive as "true"/"false"."""
    return value if isinstance(value, bool) else str(value).lower() == "true"


def coerce(data: Any, converters: dict[str, Any]) -> Any:
    """Apply ``converters`` (key name -> function) to every matching key, recursively."""
    if isinstance(data, dict):
        return {
            k: converters[k](v) if k in converters and v is not None else coerce(v, converters) for k, v in data.items()
        }
    if isinstance(data, list):
        return [coerce(item, converters) for item in data]
    return data


def tag_list(tags: Any) -> list[dict[str, str]]:
    """Return CloudFormation tags (a list of Key/Value, or a JSON object) as an API tag list."""
    if isinstance(tags, dict):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags or []]
