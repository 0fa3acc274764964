"""train.py's flags: SageMaker string/JSON values, SM_* defaults, unknown flags."""

from __future__ import annotations

import argparse
import logging

import pytest

from training.hyperparameters import HyperparameterError, hp_float, hp_int, hp_str, hp_units, parse_args

pytestmark = pytest.mark.unit

DIRS = ["--train", "t", "--validation", "v", "--test", "x", "--model-dir", "m", "--output-data-dir", "o"]


@pytest.mark.parametrize(("raw", "expected"), [("30", 30), ('"30"', 30), ("30.0", 30), (" 7 ", 7)])
def test_int_values_arrive_as_text_or_json(raw: str, expected: int) -> None:
    assert hp_int(raw) == expected


@pytest.mark.parametrize("raw", ["3.5", "abc", '"x"', "[1]"])
def test_bad_int_values_are_rejected(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        hp_int(raw)


@pytest.mark.parametrize(("raw", "expected"), [("0.001", 0.001), ("1e-3", 0.001), ('"0.5"', 0.5), ("2", 2.0)])
def test_float_values(raw: str, expected: float) -> None:
    assert hp_float(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("128,64", (128, 64)),
        ("[128, 64]", (128, 64)),
        ('"128,64"', (128, 64)),
        ("128-64", (128, 64)),
        ("128 64", (128, 64)),
        ("32", (32,)),
        ("[]", ()),
    ],
)
def test_layer_widths_in_every_spelling(raw: str, expected: tuple[int, ...]) -> None:
    assert hp_units(raw) == expected


@pytest.mark.parametrize("raw", ["128,0", "wide", "[1.5]"])
def test_bad_layer_widths(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        hp_units(raw)


def test_strings_lose_sdk_json_quoting() -> None:
    assert hp_str('"balanced"') == "balanced"
    assert hp_str("sqrt") == "sqrt"
    assert hp_str("3") == "3"


def test_directories_default_to_the_sagemaker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
        "SM_CHANNEL_VALIDATION": "/opt/ml/input/data/validation",
        "SM_CHANNEL_TEST": "/opt/ml/input/data/test",
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
    }.items():
        monkeypatch.setenv(name, value)
    args = parse_args(["--epochs", "3", "--hidden-units", "[16, 8]"])
    assert args.train == "/opt/ml/input/data/train"
    assert args.model_dir == "/opt/ml/model"
    assert args.output_data_dir == "/opt/ml/output/data"
    assert (args.epochs, args.hidden_units) == (3, (16, 8))


def test_unknown_flags_are_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        args = parse_args([*DIRS, "--model_dir", "s3://bucket/job/model", "--mystery", "1"])
    assert args.model_dir == "m"  # the SDK's --model_dir neither crashes nor abbreviates to --model-dir
    assert "--model_dir s3://bucket/job/model --mystery 1" in caplog.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model-version", "0"], "positive integer"),
        (["--dropout", "1"], "dropout"),
        (["--epochs", "0"], "positive"),
    ],
)
def test_invalid_values_stop_with_a_message(extra: list[str], message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        parse_args([*DIRS, *extra])


def test_malformed_value_names_the_flag() -> None:
    with pytest.raises(HyperparameterError, match="--epochs: expected an integer, got 'many'"):
        parse_args([*DIRS, "--epochs", "many"])


def test_missing_directory_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_CHANNEL_TEST", raising=False)
    with pytest.raises(HyperparameterError, match="--test is required"):
        parse_args(DIRS[:4] + DIRS[6:])


def test_hyperparameters_may_be_spelled_with_underscores() -> None:
    args = parse_args([*DIRS, "--batch_size", "64", "--hidden_units", "[16, 8]", "--learning-rate", "0.01"])

    assert (args.batch_size, args.hidden_units, args.learning_rate) == (64, (16, 8), 0.01)


def test_the_sdk_model_dir_never_replaces_sm_model_dir() -> None:
    args = parse_args([*DIRS, "--model_dir", "s3://bucket/model"])

    assert args.model_dir == "m"
