"""`mlkit local deploy`: the real CDK app (stage local) deploys into LocalStack with every resource really created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.stages import get_stage
from mlkit.local.deploy import BOOTSTRAP_STACK, deploy
from mlkit.local.layout import Layout

pytestmark = pytest.mark.integration

_STACKS = ("data", "monitoring", "preprocessing", "pipeline")


def test_deploy_creates_every_resource(deployed: Any, aws: Callable[[str], Any]) -> None:
    assert deployed.resources > 0
    assert deployed.unknown == []
    stacks = {s["StackName"]: s["StackStatus"] for s in aws("cloudformation").describe_stacks()["Stacks"]}
    for name in deployed.stacks:
        assert stacks[name] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), (name, stacks[name])
    # Exactly the stage's stacks and the bootstrap stack: other stacks in the LocalStack are not counted.
    stage = get_stage("local")
    assert set(deployed.stacks) == {*(f"{stage.prefix}-{s}" for s in _STACKS), BOOTSTRAP_STACK}


def test_deploy_twice_is_safe(deployed: Any) -> None:
    again = deploy(Layout(), stage="local", bootstrap=False, progress=None)

    assert again.stacks == deployed.stacks
    assert again.unknown == []
