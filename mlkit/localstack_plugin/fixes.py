# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (localstack and moto live in LocalStack's Python 3.13 virtualenv, not the project's: their types are Any here.)
"""Small run-time fixes to LocalStack 4.13.1 that the kit's stacks need, applied by the start-up hook.

Each fix changes no file of LocalStack and leaves behaviour unchanged where LocalStack already works.
"""

from __future__ import annotations

from typing import Any


def sfn_glue_sync() -> None:
    """Make Step Functions' ``glue:startJobRun.sync`` finish instead of crashing.

    The Glue task always releases its callback endpoint once the job run ends, but it only creates one
    when WaitForTaskToken is among the integration's supported patterns, which it is not in 4.13.1: the
    release then fails on ``None`` (``'NoneType' object has no attribute 'interrupt_all'``). Adding the
    pattern to the set makes every Glue task create its endpoint. ``.waitForTaskToken`` itself stays
    unsupported: the Glue task still rejects it in ``_wait_for_task_token``.
    """
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service import (
        state_task_service_glue as glue_task,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service.resource import (
        ResourceCondition,
    )

    # The module-level set is shared by every Glue task instance, so changing it in place is enough.
    glue_task._SUPPORTED_INTEGRATION_PATTERNS.add(ResourceCondition.WaitForTaskToken)


def cfn_find_in_map_updates() -> None:
    """Let CloudFormation update stacks whose ``Fn::FindInMap`` keys are intrinsics.

    CDK writes region-specific values as ``{"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "Key"]}``
    (the framework image URIs, for one). Creating such a stack works, but the v2 engine's change-set
    model raises NotImplementedError when it computes the change type of that lookup on an update, so
    CreateChangeSet answers 501 and a second ``cdk deploy`` of a changed stack fails. Where it gives up,
    the lookup's value can only have changed if its mapping did, so that is the answer given.
    """
    from localstack.services.cloudformation.engine.v2 import change_set_model as model

    original = model.ChangeSetModel._resolve_intrinsic_function_fn_find_in_map
    if getattr(original, "_mlkit_fixed", False):
        return

    def find_in_map(self: Any, arguments: Any) -> Any:
        try:
            return original(self, arguments)
        except NotImplementedError:
            mapping = arguments.array[0] if isinstance(arguments, model.NodeArray) and arguments.array else None
            if isinstance(mapping, model.TerminalValue):
                return self._retrieve_mapping(mapping_name=mapping.value).change_type
            return model.ChangeType.MODIFIED

    find_in_map._mlkit_fixed = True  # type: ignore[attr-defined]
    model.ChangeSetModel._resolve_intrinsic_function_fn_find_in_map = find_in_map
