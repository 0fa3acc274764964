"""Shared helpers of the CDK tests: the app's own context, bare stacks, one synthesis per stage."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from aws_cdk.cx_api import CloudAssembly

from infra.app import StageStacks, add_stage
from infra.nag import add_checks
from infra.stages import STAGES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]


_OUTDIRS = tempfile.TemporaryDirectory(prefix="cdk-tests-")  # removed when the test session ends


def new_app(**context: Any) -> App:
    """Return an app with the feature flags of ``cdk.json`` (what ``cdk synth`` uses)."""
    outdir = tempfile.mkdtemp(dir=_OUTDIRS.name)
    return App(context={**CDK_CONTEXT, **context}, outdir=outdir)


def bare_stack(name: str = "Test") -> Stack:
    """Return an empty, environment-agnostic stack for testing one construct."""
    return Stack(new_app(), name)


@dataclass(frozen=True)
class SynthesizedStage:
    """A whole stage, synthesised once per test session (synthesis takes tens of seconds)."""

    stage: str
    stacks: StageStacks
    assembly: CloudAssembly

    def template(self, unit: str) -> Template:
        """Return the template of a stack (``data``, ``monitoring``, ``preprocessing``, ``pipeline``)."""
        return Template.from_json(self.template_json(unit))

    def template_json(self, unit: str) -> dict[str, Any]:
        """Return a stack's template as JSON."""
        stack = getattr(self.stacks, unit)
        artifact = self.assembly.get_stack_artifact(stack.artifact_id)
        return dict(artifact.template)

    def template_paths(self) -> list[Path]:
        """Return the files of every template of the stage."""
        return [Path(a.template_full_path) for a in self.assembly.stacks_recursively]

    @property
    def outdir(self) -> Path:
        """The cloud assembly directory."""
        return Path(self.assembly.directory)


@cache
def synthesize(stage: str) -> SynthesizedStage:
    """Synthesise ``stage`` with the cdk-nag checks (a finding fails synthesis), once per session."""
    app = new_app(stage=stage)
    stacks = add_stage(app, STAGES[stage])
    add_checks(app)
    return SynthesizedStage(stage=stage, stacks=stacks, assembly=app.synth())


def state_machine_definition(template: dict[str, Any]) -> dict[str, Any]:
    """Return the (only) state machine definition of a template, tokens replaced by readable markers.

    ``{"Ref": "X"}`` becomes ``<X>``, ``{"Fn::GetAtt": ["X", "Arn"]}`` ``<X.Arn>``, a ``Fn::FindInMap``
    ``<FindInMap Map/<AWS::Region>/Key>``, an import ``<Import name>``, an ``Fn::Sub`` its text.
    """
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert len(machines) == 1, f"expected one state machine, found {len(machines)}"
    definition = machines[0]["Properties"]["DefinitionString"]
    parts = definition["Fn::Join"][1] if isinstance(definition, dict) else [definition]
    text = "".join(part if isinstance(part, str) else _marker(part) for part in parts)
    return dict(json.loads(text))


def _marker(token: dict[str, Any]) -> str:
    ((function, argument),) = token.items()
    if function == "Ref":
        return f"<{argument}>"
    if function == "Fn::GetAtt":
        return f"<{argument[0]}.{argument[1]}>"
    if function == "Fn::FindInMap":
        region = _marker(argument[1]) if isinstance(argument[1], dict) else argument[1]
        return f"<FindInMap {argument[0]}/{region}/{argument[2]}>"
    if function == "Fn::ImportValue":
        return f"<Import {argument}>"
    if function == "Fn::Sub":
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", argument)
    raise AssertionError(f"unexpected token in a definition: {token}")
