"""Build the code bundles that the AWS runtimes download: one function per bundle.

The local runners and the CDK stacks both call these, so what runs locally is byte-for-byte what
deploys:

* ``sourcedir.tar.gz`` — SageMaker script mode's ``sagemaker_submit_directory`` (a tar.gz, not a zip).
  ``train.py`` sits at the root (``sagemaker_program``) beside the ``training``, ``inference`` and
  ``mlkit`` packages it imports.
* ``glue_libs.zip`` — Glue's ``--extra-py-files``: the Beam pipeline package and the schema module.
* ``model.tar.gz`` — what a training job uploads from ``SM_MODEL_DIR``.

Archives are reproducible: entries are sorted, timestamps and owners are fixed, so an unchanged
source tree gives the same bytes (and the same CDK asset hash).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The stdlib-only part of ``mlkit`` that runtimes need (schema and dataset configurations).
SCHEMA_FILES = ("mlkit/__init__.py", "mlkit/schema.py", "mlkit/datasets")
SOURCEDIR_PROGRAM = "train.py"
_FIXED_MTIME = 1_600_000_000  # any fixed time: archives must not change when only mtimes do


def sourcedir_members() -> list[tuple[str, Path]]:
    """Return ``(archive name, file)`` pairs of the training ``sourcedir.tar.gz``."""
    members = [(SOURCEDIR_PROGRAM, PROJECT_ROOT / "training" / "train.py")]
    members += _tree(("training", "inference", *SCHEMA_FILES))
    return members


def glue_lib_members() -> list[tuple[str, Path]]:
    """Return ``(archive name, file)`` pairs of the Glue ``--extra-py-files`` archive."""
    return _tree(("glue_jobs/__init__.py", "glue_jobs/preprocess", *SCHEMA_FILES))


def build_sourcedir(dest_dir: Path) -> Path:
    """Write ``sourcedir.tar.gz`` into ``dest_dir`` and return its path."""
    return write_tar_gz(dest_dir / "sourcedir.tar.gz", sourcedir_members())


def build_glue_libs(dest_dir: Path) -> Path:
    """Write ``glue_libs.zip`` into ``dest_dir`` and return its path."""
    path = dest_dir / "glue_libs.zip"
    dest_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, file in sorted(glue_lib_members()):
            info = zipfile.ZipInfo(name, date_time=(2020, 9, 13, 12, 26, 40))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return path


def pack_model_dir(model_dir: Path, dest: Path) -> Path:
    """Pack a finished ``SM_MODEL_DIR`` into ``model.tar.gz`` exactly as SageMaker does (paths relative).

    Args:
        model_dir: The directory the training script wrote (``1/``, ``code/``, ``evaluation.json``...).
        dest: Path of the archive to write.

    Returns:
        ``dest``.
    """
    files = [(str(p.relative_to(model_dir)), p) for p in model_dir.rglob("*") if p.is_file()]
    return write_tar_gz(dest, files)


def write_tar_gz(dest: Path, members: Iterable[tuple[str, Path]]) -> Path:
    """Write a reproducible gzip tarball of ``members`` (``(archive name, file)`` pairs)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, file in sorted(members):
            info = tarfile.TarInfo(name)
            data = file.read_bytes()
            info.size = len(data)
            info.mtime = _FIXED_MTIME
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
        zipped.write(buffer.getvalue())
    return dest


def _tree(paths: Iterable[str]) -> list[tuple[str, Path]]:
    return [(str(f.relative_to(PROJECT_ROOT)), f) for p in paths for f in _files(PROJECT_ROOT / p)]


def _files(path: Path) -> Iterator[Path]:
    if not path.exists():
        raise FileNotFoundError(f"packaging: {path} is missing from the project tree")
    if path.is_file():
        yield path
        return
    for file in sorted(path.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".pyo"):
            yield file
