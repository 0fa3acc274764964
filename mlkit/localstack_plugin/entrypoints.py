# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""What LocalStack looks up through the entry points: service providers and start-up/shutdown hooks.

Providers are built lazily (on a service's first request), so LocalStack's start stays fast.
"""

from __future__ import annotations

from typing import Any

from localstack.runtime import hooks
from localstack.services.plugins import Service, aws_provider


@aws_provider(api="sagemaker")
def sagemaker() -> Any:
    """SageMaker: training jobs and endpoints of the kit's own, the rest from moto."""
    from .aws import moto_fallback
    from .sagemaker_provider import SageMakerProvider

    return Service.for_provider(SageMakerProvider(), dispatch_table_factory=moto_fallback)


@aws_provider(api="sagemaker-runtime")
def sagemaker_runtime() -> Any:
    """SageMaker Runtime: InvokeEndpoint against the endpoint servers."""
    from .runtime_provider import SageMakerRuntimeProvider

    return Service.for_provider(SageMakerRuntimeProvider())


@aws_provider(api="glue")
def glue() -> Any:
    """Glue: job runs of the kit's own, job definitions (and the rest of Glue) from moto."""
    from .aws import moto_fallback
    from .glue_provider import GlueProvider

    return Service.for_provider(GlueProvider(), dispatch_table_factory=moto_fallback)


class _MotoOnly:
    """A provider with no handlers of its own: the whole API comes from moto."""

    def __init__(self, service: str) -> None:
        self.service = service


@aws_provider(api="application-autoscaling")
def application_autoscaling() -> Any:
    """Application Auto Scaling (endpoint autoscaling targets and policies), entirely from moto."""
    from .aws import moto_fallback

    return Service.for_provider(_MotoOnly("application-autoscaling"), dispatch_table_factory=moto_fallback)


@hooks.on_infra_start()
def apply_fixes() -> None:
    """Apply the kit's run-time fixes to LocalStack 4.13.1 (see ``fixes``)."""
    from . import fixes

    fixes.sfn_glue_sync()
    fixes.cfn_find_in_map_updates()


@hooks.on_infra_ready()
def start_alarm_evaluator() -> None:
    """Evaluate the percentile and metric-math alarms LocalStack community skips (see ``alarms``)."""
    from .alarms import EVALUATOR

    EVALUATOR.start()


@hooks.on_infra_shutdown()
def stop_endpoint_servers() -> None:
    """Stop the endpoint servers with LocalStack (``mlkit local down`` also kills its process group)."""
    import sys

    module = sys.modules.get(f"{__package__}.sagemaker_provider")
    if module is not None:
        module.stop_all_endpoint_servers()
