"""cdk-nag (3.x) wiring and scoped acknowledgements.

cdk-nag 3 runs as a CDK policy-validation plugin: a finding fails ``cdk synth``. An acknowledgement
names exactly one finding (``AwsSolutions-IAM5[Resource::...]``) on one construct subtree and carries
the reason it is acceptable; there is no rule-wide suppression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    """Run the AWS Solutions rule pack over every stack of ``app`` at synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str, *, applies_to: Iterable[str] = ()) -> None:
    """Acknowledge a finding of ``rule`` on ``scope`` and its children.

    Args:
        scope: The construct the finding is reported on (or a parent).
        rule: The rule id, e.g. ``AwsSolutions-S1``.
        reason: Why the finding is acceptable here.
        applies_to: Finding ids of rules that report several per resource (``Resource::*``,
            ``Action::s3:GetObject*``); each one is acknowledged on its own.
    """
    if len(reason) < 20:
        raise ValueError(f"acknowledgement of {rule} needs a real reason, got {reason!r}")
    ids = [f"{rule}[{finding}]" for finding in applies_to] or [rule]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def resource_finding(scope: IConstruct, value: str) -> str:
    """Return the ``Resource::`` finding id cdk-nag reports for a resource string that holds tokens.

    cdk-nag writes ``{"Ref": "X"}`` and ``${X}`` as ``<X>``, ``{"Fn::GetAtt": ["X", "Arn"]}`` as
    ``<X.Arn>`` and an imported value as its export name. Resolve in the stack that holds the policy.
    """
    return f"Resource::{_flatten(Stack.of(scope).resolve(value))}"


def _flatten(resolved: Any) -> str:
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and len(resolved) == 1:
        ((function, argument),) = resolved.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::Join" and argument[0] == "":
            return "".join(_flatten(part) for part in argument[1])
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", argument)
        if function == "Fn::ImportValue":
            return _flatten(argument)
    raise ValueError(f"cannot name the cdk-nag finding of {resolved!r}")


def arn_finding(resource: IConstruct, suffix: str = "/*", attribute: str = "Arn") -> str:
    """Return the ``Resource::`` finding id cdk-nag reports for ``<resource ARN><suffix>``.

    Args:
        resource: An L2 construct (its default child is used) or an L1 resource.
        suffix: What the policy appends to the ARN.
        attribute: The ``Fn::GetAtt`` attribute the policy refers to.
    """
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to name")
    logical_id = Stack.of(cfn).resolve(Stack.of(cfn).get_logical_id(cfn))
    return f"Resource::<{logical_id}.{attribute}>{suffix}"
