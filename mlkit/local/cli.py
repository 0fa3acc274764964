"""The ``mlkit local`` command group: ``up``, ``down``, ``status``, ``logs``, ``deploy`` and ``demo``.

Registered into the main ``mlkit`` parser by :func:`add_commands`. Every handler takes the parsed
arguments and returns the process exit code; every command is safe to run twice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from mlkit.local.control import LocalStackError, down, status, tail, up
from mlkit.local.install import InstallError
from mlkit.local.layout import Layout, LayoutError


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``mlkit local ...`` on the main parser's sub-commands.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned for the ``mlkit`` parser.
    """
    local = subparsers.add_parser(
        "local",
        help="LocalStack community on this machine: up, down, status, logs, deploy, demo",
        description="Run the kit locally on LocalStack community (no Docker, no account, no token).",
    )
    commands = local.add_subparsers(title="commands", metavar="COMMAND")

    cmd_up = commands.add_parser("up", help="install (first use) and start LocalStack, wait until healthy")
    cmd_up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health (%(default)s)")
    cmd_up.set_defaults(handler=_guarded("up", _up))

    cmd_down = commands.add_parser("down", help="stop LocalStack (SIGTERM, then SIGKILL after --timeout)")
    cmd_down.add_argument("--timeout", type=float, default=20.0, help="seconds before SIGKILL (%(default)s)")
    cmd_down.set_defaults(handler=_guarded("down", _down))

    cmd_status = commands.add_parser("status", help="is LocalStack running, and are the kit's services loaded")
    cmd_status.add_argument("--json", action="store_true", help="print the status as JSON")
    cmd_status.set_defaults(handler=_guarded("status", _status))

    cmd_logs = commands.add_parser("logs", help="print LocalStack's log")
    cmd_logs.add_argument("-n", "--lines", type=int, default=100, help="how many last lines (%(default)s)")
    cmd_logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    cmd_logs.set_defaults(handler=_guarded("logs", _logs))

    cmd_deploy = commands.add_parser("deploy", help="bootstrap and deploy the CDK app (stage local) into LocalStack")
    cmd_deploy.add_argument("--stage", default="local", help="CDK stage context (%(default)s)")
    cmd_deploy.add_argument("--no-bootstrap", action="store_true", help="skip `cdk bootstrap`")
    cmd_deploy.set_defaults(handler=_guarded("deploy", _deploy))

    cmd_demo = commands.add_parser(
        "demo",
        help="up, deploy, upload, run the pipeline, invoke, provoke the alarms, summarise",
        description="The production flow on LocalStack end to end (see mlkit/local/demo.py).",
    )
    cmd_demo.add_argument("--data", type=Path, required=True, help="the raw CSV (e.g. ai4i2020.csv)")
    cmd_demo.add_argument("--workdir", type=Path, default=Path("work/local-demo"), help="report.json goes here")
    cmd_demo.add_argument("--schema", type=Path, default=None, help="dataset schema JSON (default: packaged AI4I)")
    cmd_demo.set_defaults(handler=_guarded("demo", _demo))

    local.set_defaults(handler=lambda _args: local.print_help() or 2)


def _guarded(command: str, handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``handler``; an AWS call that fails (LocalStack gone mid-run, say) or a bad setting is one line."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (BotoCoreError, ClientError) as error:
            print(f"mlkit local {command}: an AWS call to LocalStack failed: {error}", file=sys.stderr)
            print("  is LocalStack still running? see `mlkit local status` and `mlkit local logs`", file=sys.stderr)
        except LayoutError as error:
            print(f"mlkit local {command}: {error}", file=sys.stderr)
        return 1

    return run


def _up(args: argparse.Namespace) -> int:
    try:
        up(Layout(), timeout=args.timeout)
    except (LocalStackError, InstallError) as error:
        print(f"mlkit local up: {error}", file=sys.stderr)
        return 1
    return 0


def _down(args: argparse.Namespace) -> int:
    down(Layout(), timeout=args.timeout)
    return 0


def _status(args: argparse.Namespace) -> int:
    """Exit 0 when LocalStack runs and is healthy, 1 otherwise (usable in scripts)."""
    current = status(Layout())
    if args.json:
        print(json.dumps(current.__dict__, indent=2))
    elif not current.running:
        print(f"LocalStack is not running (endpoint {current.endpoint}); start it with `mlkit local up`")
    else:
        health = "healthy" if current.healthy else "NOT answering its health check"
        print(f"LocalStack {current.version} running (pid {current.pid}) at {current.endpoint}: {health}")
        from mlkit.local.control import PLUGIN_SERVICES

        kit = ", ".join(f"{name} {current.services.get(name, 'missing')}" for name in PLUGIN_SERVICES)
        print(f"  kit plugin services: {kit}")
    return 0 if current.healthy else 1


def _logs(args: argparse.Namespace) -> int:
    layout = Layout()
    if not layout.log_file.exists():
        print(f"no log yet at {layout.log_file}; start LocalStack with `mlkit local up`", file=sys.stderr)
        return 1
    print(tail(layout.log_file, args.lines))
    if not args.follow:
        return 0
    position = layout.log_file.stat().st_size
    try:
        while True:
            size = layout.log_file.stat().st_size
            if size > position:
                with layout.log_file.open("rb") as stream:
                    stream.seek(position)
                    sys.stdout.write(stream.read(size - position).decode("utf-8", errors="replace"))
                    sys.stdout.flush()
                position = size
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def _demo(args: argparse.Namespace) -> int:
    from mlkit.local.demo import DemoError, run_demo
    from mlkit.local.deploy import DeployError
    from mlkit.local.stage_client import StageError
    from mlkit.schema import DatasetSchema

    try:
        run_demo(args.data, args.workdir, DatasetSchema.load(args.schema))
    except (DemoError, DeployError, StageError, LocalStackError, InstallError) as error:
        print(f"\nmlkit local demo: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from infra.config import ConfigError
    from mlkit.local.deploy import DeployError, deploy

    try:
        deploy(Layout(), stage=args.stage, bootstrap=not args.no_bootstrap)
    except (DeployError, ConfigError) as error:
        print(f"mlkit local deploy: {error}", file=sys.stderr)
        return 1
    return 0
