"""Unpack ``model.tar.gz`` and find what the TF Serving container would serve from it.

The container downloads ``model.tar.gz`` into ``/opt/ml/model`` and (``serve.py``, ``tfs_utils.py``):

* serves every ``<digits>/saved_model.pb`` under it as the model named after the base directory
  (``model``); TF Serving answers requests without a version from the highest one;
* starts its Python service when ``code/inference.py``, ``code/requirements.txt`` or ``code/lib``
  exists, with ``code`` and ``code/lib`` on ``PYTHONPATH`` (``requirements.txt`` is pip-installed
  unless ``code/lib`` exists, in which case it is ignored);
* otherwise answers ``/invocations`` from nginx, converting JSON and CSV for TF Serving itself.

A version must be a positive integer. A SavedModel under a name (``export/``) is never loaded by the
container. ``0000000`` is version 0, which broke TF Serving's start in the container
(aws/sagemaker-tensorflow-serving-container PR #218) and which the kit's contract forbids. Both are
rejected here at load time, with a message saying how to fix the archive.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

#: The container serves ``/opt/ml/model``; TF Serving names the model after that directory.
MODEL_NAME = "model"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_VERSION = re.compile(r"[0-9]+")


class EndpointLoadError(RuntimeError):
    """The endpoint could not load its model or its inference code."""


class ModelLayoutError(EndpointLoadError):
    """``model.tar.gz`` does not have the layout the TF Serving container requires."""


@dataclass(frozen=True)
class ModelLayout:
    """What the container finds in an unpacked ``model.tar.gz``.

    Attributes:
        root: The model directory (``/opt/ml/model`` in the container).
        version: The version TF Serving serves by default (the highest).
        version_dir: ``root/<version>``, holding ``saved_model.pb`` and ``variables/``.
        versions: Every valid version found, ascending.
        code_dir: ``root/code`` when it exists.
    """

    root: Path
    version: int
    version_dir: Path
    versions: tuple[int, ...]
    code_dir: Path | None

    @property
    def inference_script(self) -> Path | None:
        """``code/inference.py`` when present."""
        return self._code_file("inference.py")

    @property
    def lib_dir(self) -> Path | None:
        """``code/lib`` when present (put on ``sys.path`` by the container)."""
        return self._code_file("lib")

    @property
    def requirements(self) -> Path | None:
        """``code/requirements.txt`` when present."""
        return self._code_file("requirements.txt")

    @property
    def uses_python_service(self) -> bool:
        """Whether the container would route requests through its Python service (else nginx)."""
        return any(p is not None for p in (self.inference_script, self.lib_dir, self.requirements))

    def _code_file(self, name: str) -> Path | None:
        if self.code_dir is None:
            return None
        path = self.code_dir / name
        return path if path.exists() else None


def extract_model(archive: Path, dest: Path) -> Path:
    """Unpack ``model.tar.gz`` into ``dest/model`` (refusing members that escape it).

    Args:
        archive: The ``model.tar.gz`` file.
        dest: An existing directory; ``dest/model`` must not exist yet.

    Returns:
        The model directory.

    Raises:
        ModelLayoutError: If the archive is missing, unreadable or unsafe.
    """
    root = dest / MODEL_NAME
    if not archive.is_file():
        raise ModelLayoutError(f"model archive not found: {archive}")
    try:
        with tarfile.open(archive, "r:*") as tar:
            root.mkdir(parents=True)
            # The "data" filter rejects absolute paths, "..", device files and links leaving root.
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ModelLayoutError(f"cannot unpack {archive}: {error}") from error
    return root


def find_layout(root: Path) -> ModelLayout:
    """Validate an unpacked model directory the way the container would load it.

    Args:
        root: The model directory (what ``model.tar.gz`` unpacks to).

    Returns:
        The layout found.

    Raises:
        ModelLayoutError: If there is no SavedModel in a positive numeric version directory, or a
            SavedModel sits where the container would not load it.
    """
    if not root.is_dir():
        raise ModelLayoutError(f"model directory not found: {root}")
    if _has_saved_model(root):
        raise ModelLayoutError(
            f"{root} holds saved_model.pb at its top level; the TF Serving container needs it in a "
            "numeric version directory such as 1/ (model.tar.gz must contain 1/saved_model.pb)"
        )
    versions: dict[int, Path] = {}
    for child in sorted(p for p in root.iterdir() if p.is_dir() and _has_saved_model(p)):
        if not _VERSION.fullmatch(child.name):
            raise ModelLayoutError(
                f"SavedModel directory {child.name!r} is not a model version: TF Serving only loads "
                "directories named by a positive integer, such as 1/"
            )
        number = int(child.name)
        if number <= 0:
            raise ModelLayoutError(
                f"model version directory {child.name!r} is version 0: TF Serving needs a positive integer, such as 1/"
            )
        if number in versions:
            twins = f"{versions[number].name!r} and {child.name!r}"
            raise ModelLayoutError(f"version directories {twins} are both version {number}")
        versions[number] = child
    if not versions:
        raise ModelLayoutError(f"no SavedModel found in {root}: model.tar.gz must contain 1/saved_model.pb")
    version = max(versions)
    code = root / "code"
    return ModelLayout(
        root=root,
        version=version,
        version_dir=versions[version],
        versions=tuple(sorted(versions)),
        code_dir=code if code.is_dir() else None,
    )


def _has_saved_model(directory: Path) -> bool:
    return any((directory / name).is_file() for name in SAVED_MODEL_FILES)
