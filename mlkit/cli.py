"""The ``mlkit`` command line: everyday work with the kit.

Commands:
    run          the whole pipeline in-process on one machine (no servers, no AWS account)
    fetch-data   download the AI4I 2020 CSV from the UCI archive and verify its checksum
    local ...    LocalStack control and deployment (see ``mlkit local --help``)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlkit.fetch_data import FetchError, fetch
from mlkit.quality_gate import QualityGate
from mlkit.schema import SchemaError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every command registered."""
    parser = argparse.ArgumentParser(prog="mlkit", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="run the whole pipeline locally on a CSV")
    run.add_argument("--data", type=Path, required=True, help="raw CSV (e.g. ../shared/data/ai4i2020.csv)")
    run.add_argument("--workdir", type=Path, default=Path("work/run"), help="where outputs go (default: work/run)")
    run.add_argument("--schema", type=Path, help="dataset schema JSON (default: the packaged AI4I 2020 schema)")
    run.add_argument(
        "--hyperparameters",
        type=json.loads,
        default={},
        help="training hyperparameters as JSON, e.g. '{\"epochs\": 40}'",
    )
    defaults = QualityGate()
    run.add_argument("--min-f1", type=float, default=defaults.min_f1, help="quality gate (default: %(default)s)")
    run.add_argument("--min-roc-auc", type=float, default=defaults.min_roc_auc, help="(default: %(default)s)")
    run.add_argument("--min-accuracy", type=float, default=defaults.min_accuracy, help="(default: %(default)s)")
    run.set_defaults(handler=_run)

    fetch_data = commands.add_parser("fetch-data", help="download the AI4I 2020 CSV from the UCI archive")
    fetch_data.add_argument("--dest", type=Path, default=Path("data/ai4i2020.csv"), help="(default: %(default)s)")
    fetch_data.set_defaults(handler=_fetch_data)

    try:
        from mlkit.local.cli import add_commands
    except ImportError:  # the LocalStack tooling is optional for `mlkit run`
        pass
    else:
        add_commands(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    from mlkit.run_pipeline import PipelineError, RunOptions, run

    try:
        gate = QualityGate(min_f1=args.min_f1, min_roc_auc=args.min_roc_auc, min_accuracy=args.min_accuracy)
        report = run(
            RunOptions(
                data=args.data,
                workdir=args.workdir,
                schema_path=args.schema,
                hyperparameters=args.hyperparameters,
                gate=gate,
            )
        )
    except (PipelineError, SchemaError, ValueError, FileNotFoundError) as error:
        print(f"\nmlkit run failed: {error}", file=sys.stderr)
        print(f"partial report: {args.workdir / 'report.json'}", file=sys.stderr)
        return 1
    print(format_summary(report))
    return 0


def format_summary(report: dict[str, Any]) -> str:
    """Render the end-of-run summary shown to the user."""
    rows, metrics, served = report["rows"], report["metrics"], report["endpoint"]
    splits = ", ".join(f"{name} {s['rows']} ({s['positives']} failures)" for name, s in rows["splits"].items())
    matrix = report["confusion_matrix"]
    lines = [
        "",
        f"mlkit run: {report['status']} in {report['seconds']['total']:.0f} s   ({report['dataset']}, "
        f"label '{report['label']}')",
        f"  rows       read {rows['read']}  accepted {rows['accepted']}  rejected {rows['rejected']}  "
        f"duplicates {rows['duplicates']}",
        f"  splits     {splits}",
        f"  model      F1 {metrics['f1']:.4f}  ROC-AUC {metrics['roc_auc']:.4f}  PR-AUC {metrics['pr_auc']:.4f}  "
        f"accuracy {metrics['accuracy']:.4f}  (threshold {report['threshold']:.3f})",
        f"             precision {metrics['precision']:.4f}  recall {metrics['recall']:.4f}  "
        f"TP {matrix['tp']}  FP {matrix['fp']}  FN {matrix['fn']}  TN {matrix['tn']}",
        f"  endpoint   {served['requests']} requests over HTTP, latency p50 {served['latency_ms']['p50']:.2f} ms  "
        f"p99 {served['latency_ms']['p99']:.2f} ms",
        f"             served == offline for every row: {served['served_equals_offline']['equal']}",
        f"  outputs    {report['workdir']}/  (report.json, curated/, training/, {Path(report['model_tar']).name})",
    ]
    return "\n".join(lines)


def _fetch_data(args: argparse.Namespace) -> int:
    try:
        path = fetch(args.dest)
    except FetchError as error:
        print(f"mlkit fetch-data: {error}", file=sys.stderr)
        return 1
    print(f"{path}: verified sha256")
    return 0


if __name__ == "__main__":
    sys.exit(main())
