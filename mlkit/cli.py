"""The ``mlkit`` command line: everyday work with the kit.

``mlkit run`` runs the whole pipeline on this machine (no LocalStack, no AWS account); ``mlkit local``
drives the same system on LocalStack; ``mlkit fetch-data`` downloads the AI4I 2020 data set.
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
    parser = argparse.ArgumentParser(
        prog="mlkit",
        description="Everyday work with mlops-kit: `mlkit run` runs the whole pipeline on this machine (no LocalStack, "
        "no AWS account), `mlkit local` drives the same system on LocalStack, `mlkit fetch-data` downloads the "
        "AI4I 2020 data set.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the whole pipeline on this machine: preprocess, train, gate, serve, compare",
        description="Run the pipeline in one process tree on a raw CSV: the Glue job script (Beam), train.py "
        "through the SageMaker training contract, the quality gate, and the endpoint emulation on a local port "
        "answering every test row over HTTP. No LocalStack, no AWS account.",
    )
    run.add_argument("--data", type=Path, required=True, help="raw CSV (e.g. ../shared/data/ai4i2020.csv)")
    run.add_argument("--workdir", type=Path, default=Path("work/run"), help="where outputs go (default: work/run)")
    run.add_argument("--schema", type=Path, help="dataset schema JSON (default: the packaged AI4I 2020 schema)")
    run.add_argument(
        "--hyperparameters",
        type=_json_object,
        default={},
        help="training hyperparameters as a JSON object, e.g. '{\"epochs\": 40}' (see training/train.py --help)",
    )
    defaults = QualityGate()
    gate = "quality-gate minimum of the test split's"
    run.add_argument("--min-f1", type=float, default=defaults.min_f1, help=f"{gate} F1 (default: %(default)s)")
    run.add_argument(
        "--min-roc-auc", type=float, default=defaults.min_roc_auc, help=f"{gate} ROC-AUC (default: %(default)s)"
    )
    run.add_argument(
        "--min-accuracy", type=float, default=defaults.min_accuracy, help=f"{gate} accuracy (default: %(default)s)"
    )
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


def _json_object(text: str) -> dict[str, Any]:
    """Parse ``--hyperparameters``: a JSON object, or a message saying what is wrong with it."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}); expected e.g. '{{\"epochs\": 40}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"epochs\": 40}}', got {text!r}")
    return value


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
        partial = args.workdir / "report.json"
        if _report_status(partial) == "failed":  # not a report an earlier run left there
            print(f"partial report: {partial}", file=sys.stderr)
        return 1
    print(format_summary(report))
    return 0


def _report_status(path: Path) -> str | None:
    try:
        status = json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return str(status) if status else None


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
        f"  outputs    {report['workdir']}/  (report.json, curated/, "
        f"{Path(report['model_tar']).relative_to(report['workdir'])}, endpoint/)",
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
