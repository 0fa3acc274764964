# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""Endpoint instance metrics: ``CPUUtilization``, ``MemoryUtilization`` and ``DiskUtilization``.

SageMaker publishes them once a minute in namespace ``/aws/sagemaker/Endpoints`` with dimensions
``EndpointName`` and ``VariantName``, in percent; CPU is summed over cores (up to 100 x cores). Here the
"instance" is the variant's endpoint-server process, read from ``/proc``.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import aws, settings
from .sagemaker_provider import sagemaker_stores

NAMESPACE = "/aws/sagemaker/Endpoints"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class InstanceMetrics:
    """Samples every endpoint server at most once a minute."""

    def __init__(self, period: float = 60.0) -> None:
        self.period = period
        self._last_run = 0.0
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (cpu seconds, wall time) at the last sample

    def poll(self) -> None:
        """Publish one sample per variant if a period has passed since the last one."""
        now = time.monotonic()
        if now - self._last_run < self.period:
            return
        self._last_run = now
        disk = shutil.disk_usage(settings.work_dir())
        disk_percent = 100.0 * disk.used / disk.total
        for account_id, regions in list(sagemaker_stores.items()):
            for region, store in list(regions.items()):
                data = []
                for endpoint in list(store.endpoints.values()):
                    for variant in list(endpoint.variants.values()):
                        process = variant.server.process
                        if process is None or process.poll() is not None:
                            continue
                        sample = self._sample(process.pid)
                        if sample is None:
                            continue
                        cpu, memory = sample
                        dimensions = [
                            {"Name": "EndpointName", "Value": endpoint.name},
                            {"Name": "VariantName", "Value": variant.name},
                        ]
                        when = datetime.now(UTC)
                        for name, value in (("CPUUtilization", cpu), ("MemoryUtilization", memory)):
                            if value is not None:
                                data.append(_percent(name, value, dimensions, when))
                        data.append(_percent("DiskUtilization", disk_percent, dimensions, when))
                if data:
                    aws.clients(account_id, region).cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)

    def _sample(self, pid: int) -> tuple[float | None, float | None] | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
            rss_pages = int(fields[21])
        except (OSError, IndexError, ValueError):
            return None
        cpu_seconds = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        wall = time.monotonic()
        previous = self._cpu.get(pid)
        self._cpu[pid] = (cpu_seconds, wall)
        cpu = 100.0 * (cpu_seconds - previous[0]) / (wall - previous[1]) if previous and wall > previous[1] else None
        total = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        memory = 100.0 * rss_pages / total if total else None
        return cpu, memory


def _percent(name: str, value: float, dimensions: list[dict[str, str]], when: datetime) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Percent", "Timestamp": when}


INSTANCES = InstanceMetrics()
