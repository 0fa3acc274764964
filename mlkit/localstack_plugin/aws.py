# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""LocalStack-side helpers shared by the providers: internal clients, S3 transfers, logs, moto fallback."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.api import RequestContext
from localstack.aws.connect import connect_to
from localstack.aws.spec import load_service
from localstack.services.moto import MotoFallbackDispatcher, call_moto

LOG = logging.getLogger("mlkit.localstack")


def clients(account_id: str, region: str) -> Any:
    """Return LocalStack's internal client factory acting as ``account_id`` in ``region``."""
    return connect_to(aws_access_key_id=account_id, region_name=region)


def gateway_url() -> str:
    """LocalStack's gateway URL as clients outside the process reach it (honours ``LOCALSTACK_HOST``)."""
    return str(config.external_service_url())


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Raises:
        ValueError: If ``uri`` is not an ``s3://`` URI.
    """
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def download(s3: Any, uri: str, dest: Path) -> Path:
    """Download one S3 object to ``dest`` and return ``dest``."""
    bucket, key = split_s3_uri(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(dest))
    return dest


def download_prefix(s3: Any, uri: str, dest: Path) -> int:
    """Download every object under an S3 prefix into ``dest``, keeping paths relative to the prefix.

    This is SageMaker's ``S3Prefix`` channel: ``s3://b/curated/train`` brings ``curated/train/a.csv`` as
    ``a.csv``. A URI naming a single object brings that object.

    Returns:
        How many objects were downloaded.
    """
    bucket, prefix = split_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            count += 1
    return count


def upload(s3: Any, path: Path, uri: str) -> None:
    """Upload a local file to ``uri``."""
    bucket, key = split_s3_uri(uri)
    s3.upload_file(str(path), bucket, key)


def put_log_lines(logs: Any, group: str, stream: str, lines: Sequence[str]) -> None:
    """Write ``lines`` to a CloudWatch Logs stream, creating the group and stream when missing.

    Failures are logged, never raised: logs are a convenience and must not fail a job.
    """
    try:
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line or " "} for line in lines]
        for start in range(0, len(events), 5000):  # PutLogEvents takes at most 10,000 events and 1 MB
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start : start + 5000])
    except Exception:
        LOG.warning("could not write logs to %s/%s", group, stream, exc_info=True)


def moto_fallback(provider: Any) -> dict[str, Any]:
    """Dispatch-table factory: the provider's ``@handler`` methods first, moto for every other operation.

    LocalStack routes only the operations in the table (others answer 501), so the table lists the whole
    API: the model registry, endpoint configs or Application Auto Scaling then come from moto, and moto's
    backend is the one state that the kit's own handlers read as well.
    """
    table: dict[str, Any] = MotoFallbackDispatcher(provider)
    for operation in load_service(provider.service).operation_names:
        table.setdefault(operation, _call_moto)
    return table


def _call_moto(context: RequestContext, request: Any) -> Any:
    return call_moto(context)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Yield ``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
