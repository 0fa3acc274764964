"""boto3 clients for the running LocalStack, made by ``localstack-client``.

``localstack-client`` resolves the endpoint from ``LOCALSTACK_HOST`` / ``AWS_ENDPOINT_URL``, so no endpoint
URL is ever built by hand and the same code reaches a LocalStack on another address unchanged.
"""

from __future__ import annotations

import os
from typing import Any

from localstack_client.session import Session

from mlkit.local.layout import gateway_address

DEFAULT_REGION = "us-east-1"


def session(region: str | None = None) -> Session:
    """Return a LocalStack session for ``region`` (default: ``AWS_REGION``, else us-east-1)."""
    host, port = gateway_address()
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return Session(region_name=region, localstack_host=f"{host}:{port}")


def client(service: str, region: str | None = None, **kwargs: Any) -> Any:
    """Return a boto3 client for ``service`` on the running LocalStack.

    Args:
        service: A boto3 service name, e.g. ``"sagemaker"``.
        region: The region; see :func:`session`.
        **kwargs: Passed to boto3 (e.g. ``config=botocore.config.Config(...)``).
    """
    return session(region).client(service, **kwargs)
