r"""Script-mode hyperparameters: argparse flags with defaults from the SageMaker environment.

SageMaker passes hyperparameters as strings. The SageMaker Python SDK JSON-encodes each value (a
string arrives as ``"\\"balanced\\""``, a list as ``[128, 64]``), while a plain ``CreateTrainingJob``
request passes the text as is, so every converter here first strips a JSON layer when there is one.
Flags the script does not know (the SDK's ``--model_dir s3://...``, for example) are logged and ignored
rather than failing the job.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Any, NoReturn

logger = logging.getLogger(__name__)


class HyperparameterError(ValueError):
    """A hyperparameter is missing or malformed (raised instead of argparse's exit, to become the failure reason)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print usage and exit 2, leaving the training job without a failure reason.
        raise HyperparameterError(message)


def _unwrap(raw: str) -> Any:
    r"""Decode one JSON layer if ``raw`` is JSON (``"30"`` -> 30, ``"\\"x\\""`` -> ``"x"``); else ``raw``."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw.strip()


def hp_int(raw: str) -> int:
    r"""Parse an integer hyperparameter (``"30"``, ``30.0``, ``"\\"30\\""``)."""
    value = _unwrap(raw)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}") from None
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}")
    return int(number)


def hp_float(raw: str) -> float:
    r"""Parse a float hyperparameter (``"0.001"``, ``"1e-3"``, ``"\\"0.001\\""``)."""
    try:
        return float(_unwrap(raw))
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None


def hp_str(raw: str) -> str:
    """Parse a text hyperparameter, removing SDK JSON quoting."""
    value = _unwrap(raw)
    return value if isinstance(value, str) else json.dumps(value)


def hp_units(raw: str) -> tuple[int, ...]:
    """Parse layer widths: ``128,64``, ``[128, 64]``, ``128-64`` or ``128 64``; an empty list means none."""
    value = _unwrap(raw)
    if isinstance(value, (int, float)):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        items = [part for part in re.split(r"[\s,;x\-]+", str(value).strip("[]() ")) if part]
    try:
        units = tuple(hp_int(str(item)) for item in items)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected layer widths such as 128,64, got {raw!r}") from None
    if any(u <= 0 for u in units):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {raw!r}")
    return units


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``train.py``'s flags; directory defaults come from the ``SM_*`` environment."""
    parser = _Parser(
        description="Train the tabular classifier (SageMaker script mode).",
        # Abbreviations would let an unrelated flag such as --model (from some SDK) bind to --model-dir.
        allow_abbrev=False,
    )
    env = os.environ.get
    group = parser.add_argument_group("SageMaker directories")
    group.add_argument("--train", default=env("SM_CHANNEL_TRAIN"), help="training channel (SM_CHANNEL_TRAIN)")
    group.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION"), help="SM_CHANNEL_VALIDATION")
    group.add_argument("--test", default=env("SM_CHANNEL_TEST"), help="test channel (SM_CHANNEL_TEST)")
    group.add_argument("--model-dir", default=env("SM_MODEL_DIR"), help="model output (SM_MODEL_DIR)")
    group.add_argument("--output-data-dir", default=env("SM_OUTPUT_DATA_DIR"), help="SM_OUTPUT_DATA_DIR")

    group = parser.add_argument_group("hyperparameters (each also spelled with underscores: --batch_size)")

    def hyperparameter(name: str, **kwargs: Any) -> None:
        # SageMaker users write hyperparameters both ways ({"batch_size": 64}); a silently ignored
        # spelling would train with the defaults. The directory flags above get no alias: the SDK's own
        # --model_dir (an S3 URI) must never replace SM_MODEL_DIR.
        flags = dict.fromkeys([f"--{name}", f"--{name.replace('-', '_')}"])
        group.add_argument(*flags, **kwargs)

    hyperparameter("epochs", type=hp_int, default=100, help="maximum epochs (early stopping may end sooner)")
    hyperparameter("batch-size", type=hp_int, default=256)
    hyperparameter("learning-rate", type=hp_float, default=5e-3)
    hyperparameter("hidden-units", type=hp_units, default=(128, 64), help="layer widths, e.g. 128,64")
    hyperparameter("dropout", type=hp_float, default=0.0)
    hyperparameter("l2", type=hp_float, default=1e-5, help="L2 penalty of the hidden layers")
    hyperparameter(
        "class-weight", type=hp_str, default="sqrt", help="balanced, sqrt, none, or the positive class's weight"
    )
    hyperparameter(
        "patience",
        type=hp_int,
        default=15,
        help="epochs without validation PR-AUC gain before stopping; 0 trains all epochs",
    )
    hyperparameter("seed", type=hp_int, default=42)
    hyperparameter("schema", type=hp_str, default=None, help="dataset schema JSON (default: packaged AI4I)")
    hyperparameter("model-version", type=hp_int, default=1, help="numeric SavedModel version directory")
    hyperparameter(
        "verbose", type=hp_int, default=0, help="Keras fit verbosity (the script logs one line per epoch itself)"
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags, log and ignore unknown ones, and check the values that have constraints.

    Raises:
        HyperparameterError: For a malformed value or a missing directory, naming the flag.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        logger.warning("ignoring unknown arguments: %s", " ".join(unknown))
    for name in ("train", "validation", "test", "model_dir", "output_data_dir"):
        if not getattr(args, name):
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} is required (or set the SageMaker environment variable it defaults to)")
    if args.model_version <= 0:
        parser.error("--model-version must be a positive integer (TF Serving rejects 0 and names)")
    if not 0 <= args.dropout < 1:
        parser.error("--dropout must be in [0, 1)")
    if args.epochs <= 0 or args.batch_size <= 0 or args.learning_rate <= 0:
        parser.error("--epochs, --batch-size and --learning-rate must be positive")
    return args
