"""Build the files the stacks upload as CDK assets, from the project tree, at synth time.

Paths come from this module's location, never from the working directory, so ``cdk synth`` works
from any folder. The archives are built by :mod:`mlkit.packaging`, the same code the local runners
use, so what deploys is byte-for-byte what runs locally. A missing source file fails synthesis with
the file's name instead of deploying a job that cannot start.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from mlkit import packaging

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Build outputs of the CDK app (ignored by git, like ``cdk.out``).
BUILD_DIR = PROJECT_ROOT / "build" / "infra"
#: The Glue job's entry script (Glue runs it as ``__main__``).
GLUE_ENTRY_SCRIPT = PROJECT_ROOT / "glue_jobs" / "preprocess_job.py"


class AssetBuildError(RuntimeError):
    """A deployable bundle cannot be built because a source file is missing."""


def glue_entry_script() -> Path:
    """Return the Glue job's entry script.

    Raises:
        AssetBuildError: If the script is missing.
    """
    if not GLUE_ENTRY_SCRIPT.is_file():
        raise AssetBuildError(f"cannot package the Glue job: {GLUE_ENTRY_SCRIPT} is missing")
    return GLUE_ENTRY_SCRIPT


@cache
def glue_libraries() -> Path:
    """Build ``glue_libs.zip`` (the ``glue_jobs`` and ``mlkit`` schema packages) and return its path.

    Raises:
        AssetBuildError: If a packaged source file is missing.
    """
    try:
        return packaging.build_glue_libs(BUILD_DIR / "glue")
    except FileNotFoundError as error:
        raise AssetBuildError(f"cannot package the Glue libraries: {error}") from None


@cache
def training_sourcedir() -> Path:
    """Build the script-mode ``sourcedir.tar.gz`` (``train.py`` at its root) and return its path.

    Raises:
        AssetBuildError: If a packaged source file is missing.
    """
    try:
        return packaging.build_sourcedir(BUILD_DIR / "training")
    except FileNotFoundError as error:
        raise AssetBuildError(f"cannot package the training code: {error}") from None
