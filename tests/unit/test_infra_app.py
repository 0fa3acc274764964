"""The whole CDK app, per stage: it synthesises, passes cfn-lint and cdk-nag, and suits LocalStack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct
from infra_helpers import new_app, synthesize

import infra.nag
from infra.app import add_stage
from infra.stages import STAGES

pytestmark = pytest.mark.unit

ALL_STAGES = sorted(STAGES)
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_app_synthesises_four_stacks_named_for_the_stage(stage: str) -> None:
    synthesized = synthesize(stage)  # cdk-nag runs here: any unacknowledged finding fails synthesis
    names = sorted(a.stack_name for a in synthesized.assembly.stacks_recursively)
    assert names == [f"mlkit-{stage}-{unit}" for unit in ("data", "monitoring", "pipeline", "preprocessing")]
    pipeline = synthesized.assembly.get_stack_by_name(f"mlkit-{stage}-pipeline")
    assert {d.id for d in pipeline.dependencies} >= {"Data", "Monitoring", "Preprocessing"}


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_cdk_nag_reports_nothing_unacknowledged(stage: str) -> None:
    report = json.loads((synthesize(stage).outdir / "validation-report.json").read_text(encoding="utf-8"))
    failures = [r for r in report["pluginReports"] if r.get("summary", {}).get("status") != "success"]
    assert failures == [], json.dumps(failures, indent=1)[:3000]


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_cfn_lint_finds_no_errors(stage: str) -> None:
    paths = [str(p) for p in synthesize(stage).template_paths()]
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--non-zero-exit-code", "none", "--", *paths],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)[:3000]


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_templates_deploy_without_lambda_and_without_new_intrinsics(stage: str) -> None:
    """LocalStack runs no Lambda here and knows no Fn::GetStackOutput: keep both out of every stage."""
    for path in synthesize(stage).template_paths():
        template = json.loads(path.read_text(encoding="utf-8"))
        types = {r["Type"] for r in template["Resources"].values()}
        assert not {t for t in types if t.startswith(("AWS::Lambda::", "Custom::")) or t.endswith("CustomResource")}
        assert "Fn::GetStackOutput" not in path.read_text(encoding="utf-8")


def _recorded_acknowledgements(monkeypatch: pytest.MonkeyPatch, stage: str) -> tuple[list[tuple[str, str]], Any]:
    recorded: list[tuple[str, str]] = []

    def of(scope: IConstruct) -> SimpleNamespace:
        return SimpleNamespace(acknowledge=lambda *acks: recorded.extend((scope.node.path, a.id) for a in acks))

    monkeypatch.setattr(infra.nag, "Validations", SimpleNamespace(of=of))
    app = new_app(stage=stage)
    add_stage(app, STAGES[stage])
    return recorded, AwsSolutionsChecks(app).validate_scope(app)


@pytest.mark.parametrize("stage", ["local", "prod"])
def test_every_acknowledgement_covers_a_real_finding_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """Without the acknowledgements cdk-nag reports exactly what they name: none is stale or too broad."""
    acknowledged, report = _recorded_acknowledgements(monkeypatch, stage)
    findings = {(r.construct_path, v.rule_name) for v in report.violations for r in v.violating_resources}

    def covers(ack: tuple[str, str], finding: tuple[str, str]) -> bool:
        (scope, rule), (path, found) = ack, finding
        return rule == found and (path == scope or path.startswith(f"{scope}/"))

    stale = [a for a in acknowledged if not any(covers(a, f) for f in findings)]
    uncovered = [f for f in findings if not any(covers(a, f) for a in acknowledged)]
    assert stale == [], stale
    assert uncovered == [], uncovered
    assert len(findings) > 0  # the check is live: wildcards exist and are each acknowledged


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "error: no stage given: pass -c stage=<name>"),
        ({"stage": "qa"}, "error: unknown stage 'qa': expected one of local, dev, prod"),
        ({"stage": "dev", "alarm_email": "not-an-address"}, "alarm_email 'not-an-address'"),
    ],
)
def test_the_cdk_app_reports_bad_context_in_one_line(context: dict[str, str], message: str, tmp_path: Path) -> None:
    # Exactly as the CDK CLI runs `cdk.json`'s app: context in CDK_CONTEXT_JSON, output in CDK_OUTDIR.
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-m", "infra.app"], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert completed.returncode != 0
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in completed.stderr, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
