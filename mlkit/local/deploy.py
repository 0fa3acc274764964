"""Deploy the real CDK app (stage ``local``) into the running LocalStack, then prove every resource exists.

The pinned CDK CLI from ``package.json`` (``node_modules/.bin/cdk``, installed by ``npm ci`` when missing)
bootstraps and deploys with the AWS SDK pointed at LocalStack through ``AWS_ENDPOINT_URL``. Community
LocalStack reports CREATE_COMPLETE for resource types it does not know, with the physical id ``unknown``,
and its strict mode cannot work offline; so after the deploy every resource of every stack is checked,
and any ``unknown`` one fails the deploy by name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.stages import get_stage
from mlkit.local.clients import client, session
from mlkit.local.control import endpoint_url, status
from mlkit.local.layout import Layout

#: LocalStack's default account: any non-numeric access key maps to it.
LOCAL_ACCOUNT = "000000000000"
UNKNOWN_ID = "unknown"
#: The stack `cdk bootstrap` deploys (its default name); checked with the stage's own stacks.
BOOTSTRAP_STACK = "CDKToolkit"


class DeployError(RuntimeError):
    """The deploy failed or left resources that LocalStack did not really create."""


@dataclass
class DeployReport:
    """What one ``mlkit local deploy`` did.

    Attributes:
        seconds: Duration of each phase (``bootstrap``, ``deploy``, ``check``).
        stacks: Stack name to its number of resources.
        unknown: ``stack/logical id (type)`` of each resource LocalStack skipped.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    stacks: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def resources(self) -> int:
        """How many stack resources were checked."""
        return sum(self.stacks.values())


def cdk_env(layout: Layout, region: str) -> dict[str, str]:
    """Return the environment that points the CDK CLI (AWS SDK for JavaScript v3) and the app at LocalStack."""
    url = endpoint_url()
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_S3_FORCE_PATH_STYLE": "1",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "CDK_DEFAULT_ACCOUNT": LOCAL_ACCOUNT,
            "CDK_DEFAULT_REGION": region,
            # Offline: no version check, notices or telemetry calls that would wait for a network.
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            # The AWS SDK's notice that its 2027 releases will need Node 22 would repeat in every command.
            "NODE_NO_WARNINGS": "1",
            # The app is synthesised by the project's Python (cdk.json runs `python ...`).
            "PATH": f"{layout.project_root / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    return env


def cdk_cli(layout: Layout, say: Callable[[str], None]) -> Path:
    """Return the pinned CDK CLI, running ``npm ci`` first when ``node_modules`` lacks it.

    Raises:
        DeployError: No ``package.json`` (the CDK app has not landed), no npm, or the install failed.
    """
    cli = layout.project_root / "node_modules" / ".bin" / "cdk"
    if cli.exists():
        return cli
    if not (layout.project_root / "package.json").exists():
        raise DeployError(f"no package.json in {layout.project_root}: the CDK CLI version is pinned there")
    npm = shutil.which("npm")
    if npm is None:
        raise DeployError("npm not found: install Node.js 20+ (the CDK CLI runs on it)")
    say("installing the pinned CDK CLI (npm ci)")
    lock = layout.project_root / "package-lock.json"
    command = [npm, "ci" if lock.exists() else "install", "--no-audit", "--no-fund"]
    result = subprocess.run(command, cwd=layout.project_root, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not cli.exists():
        raise DeployError(f"`{' '.join(command)}` failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return cli


def deploy(
    layout: Layout,
    *,
    stage: str = "local",
    bootstrap: bool = True,
    progress: Callable[[str], None] | None = print,
) -> DeployReport:
    """Bootstrap (optional) and deploy every stack of the CDK app into LocalStack, then check the resources.

    Args:
        layout: The project's local-mode paths.
        stage: The CDK stage context (``-c stage=...``).
        bootstrap: Run ``cdk bootstrap`` first (idempotent, about 10 s).
        progress: Called with progress lines; ``None`` for silence.

    Returns:
        Timings, and the number of resources checked per stack.

    Raises:
        DeployError: LocalStack is not running, a CDK command failed, or resources were skipped.
    """
    say = progress or (lambda _line: None)
    if not status(layout).healthy:
        raise DeployError("LocalStack is not running; start it with `mlkit local up`")
    if not (layout.project_root / "cdk.json").exists():
        raise DeployError(f"no cdk.json in {layout.project_root}: the CDK app has not landed yet")
    region = session().region_name
    cli = cdk_cli(layout, say)
    env = cdk_env(layout, region)
    report = DeployReport()
    context = ["-c", f"stage={stage}"]
    common = ["--no-notices", "--no-color"]
    # Its own cloud assembly: a `cdk synth` running beside it in the project must not swap templates under it.
    output = ["--output", str(layout.home / "cdk.out")]
    if bootstrap:
        # Outside the project: with an explicit environment the bootstrap template needs no app, and in
        # the project the CLI would first synthesise the whole app (about 25 s) for nothing.
        report.seconds["bootstrap"] = _cdk(
            [str(cli), "bootstrap", f"aws://{LOCAL_ACCOUNT}/{region}", *common], layout, env, say, cwd=layout.home
        )
    report.seconds["deploy"] = _cdk(
        [str(cli), "deploy", "--all", "--require-approval", "never", *context, *output, *common], layout, env, say
    )
    started = time.perf_counter()
    report.stacks, report.unknown = check_resources(
        client("cloudformation", region), (f"{get_stage(stage).prefix}-", BOOTSTRAP_STACK)
    )
    report.seconds["check"] = round(time.perf_counter() - started, 2)
    if report.unknown:
        raise DeployError(
            f"{len(report.unknown)} of {report.resources} resources were not really created by LocalStack "
            "(physical id 'unknown'; the kit's plugin has no provider for their type):\n  "
            + "\n  ".join(report.unknown)
        )
    timings = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in report.seconds.items())
    say(
        f"deployed stage '{stage}': {report.resources} resources in {len(report.stacks)} stacks checked, "
        f"0 with physical id 'unknown' ({timings})"
    )
    return report


def check_resources(cloudformation: Any, prefixes: Sequence[str] = ("",)) -> tuple[dict[str, int], list[str]]:
    """Check every resource of the live stacks named ``prefix...`` for the physical id ``unknown`` (or none).

    Args:
        cloudformation: A CloudFormation client.
        prefixes: Stack-name prefixes to check (default: every stack).

    Returns:
        ``(stack name -> resource count, ["stack/logical id (type)" of each skipped resource])``.
    """
    counts: dict[str, int] = {}
    unknown: list[str] = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            name = stack["StackName"]
            if stack["StackStatus"] == "DELETE_COMPLETE" or not name.startswith(tuple(prefixes)):
                continue
            resources = [
                r
                for listed in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
                for r in listed["StackResourceSummaries"]
            ]
            counts[name] = len(resources)
            unknown += [
                f"{name}/{r['LogicalResourceId']} ({r['ResourceType']})"
                for r in resources
                if r.get("PhysicalResourceId") in (None, "", UNKNOWN_ID)
            ]
    return counts, unknown


def _cdk(
    command: Sequence[str],
    layout: Layout,
    env: dict[str, str],
    say: Callable[[str], None],
    *,
    cwd: Path | None = None,
) -> float:
    """Run one CDK command (in the project unless ``cwd``), streaming its output; return its duration in seconds."""
    phase = command[1]
    say(f"cdk {phase} ({' '.join(command[2:])})")
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        cwd=cwd or layout.project_root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip())
        say(f"  {line.rstrip()}")
    code = process.wait()
    seconds = round(time.perf_counter() - started, 2)
    if code != 0:
        raise DeployError(
            f"`cdk {phase}` failed with exit code {code} after {seconds:.0f} s:\n" + "\n".join(lines[-40:])
        )
    say(f"cdk {phase} done in {seconds:.1f} s")
    return seconds
