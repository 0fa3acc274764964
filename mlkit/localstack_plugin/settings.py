"""Settings the LocalStack process passes to the plugin through its environment (see ``mlkit.local.control``)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def project_python() -> str:
    """The project's Python 3.11 (TensorFlow, Beam) that runs Glue scripts, training jobs and endpoints."""
    return os.environ.get("MLKIT_PYTHON") or sys.executable


def project_root() -> Path | None:
    """The kit's clone, the working directory of job subprocesses (``None`` when unknown)."""
    root = os.environ.get("MLKIT_PROJECT_ROOT")
    return Path(root) if root else None


def work_dir() -> Path:
    """Where runs, training jobs and endpoint servers keep their files."""
    path = Path(os.environ.get("MLKIT_WORK_DIR") or Path(tempfile.gettempdir()) / "mlkit-localstack")
    path.mkdir(parents=True, exist_ok=True)
    return path


def ping_timeout() -> float:
    """Seconds an endpoint server has to answer ``/ping``: SageMaker's limit is 4 minutes."""
    return float(os.environ.get("MLKIT_ENDPOINT_PING_TIMEOUT", "240"))
