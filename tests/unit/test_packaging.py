"""The code bundles of mlkit/packaging.py: what the SageMaker and Glue runtimes download."""

from __future__ import annotations

import ast
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mlkit.packaging import PROJECT_ROOT, SOURCEDIR_PROGRAM, build_glue_libs, build_sourcedir, pack_model_dir

pytestmark = pytest.mark.unit

#: What the SageMaker TensorFlow training image provides besides the standard library.
CONTAINER_PACKAGES = {"numpy", "tensorflow", "keras"}


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_sourcedir_has_the_program_at_its_root_beside_its_packages(tmp_path: Path) -> None:
    archive = build_sourcedir(tmp_path)
    assert archive.name == "sourcedir.tar.gz"
    assert tarfile.is_tarfile(archive)  # script mode wants a tar.gz, not a zip
    members = _members(archive)
    assert SOURCEDIR_PROGRAM == "train.py"
    assert members["train.py"] == (PROJECT_ROOT / "training" / "train.py").read_bytes()
    for required in (
        "training/__init__.py",
        "training/features.py",
        "training/export.py",
        "inference/__init__.py",
        "inference/inference.py",
        "mlkit/__init__.py",
        "mlkit/schema.py",
        "mlkit/datasets/ai4i2020.json",
    ):
        assert required in members, required
    # Only the stdlib-only part of mlkit ships; no caches.
    assert not [
        n
        for n in members
        if n.startswith("mlkit/") and not n.startswith(("mlkit/datasets/", "mlkit/__init__", "mlkit/schema"))
    ]
    assert not [n for n in members if "__pycache__" in n or n.endswith(".pyc")]
    assert all(not n.startswith(("/", "./")) and ".." not in n.split("/") for n in members)


def test_archives_are_reproducible(tmp_path: Path) -> None:
    first = build_sourcedir(tmp_path / "a").read_bytes()
    second = build_sourcedir(tmp_path / "b").read_bytes()
    assert first == second  # same tree, same bytes: the CDK asset hash only changes with the code
    assert build_glue_libs(tmp_path / "a").read_bytes() == build_glue_libs(tmp_path / "b").read_bytes()


def test_training_code_imports_only_what_the_container_has(tmp_path: Path) -> None:
    members = _members(build_sourcedir(tmp_path))
    shipped = {name.split("/")[0] for name in members if "/" in name}
    allowed = set(sys.stdlib_module_names) | CONTAINER_PACKAGES | shipped
    for name, data in members.items():
        if not name.endswith(".py") or name.startswith("inference/"):
            continue  # inference/ runs in the serving container and is checked with its handlers
        for node in ast.walk(ast.parse(data, filename=name)):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{name} imports {root}, which the TF training image lacks"


def test_glue_libs_hold_the_pipeline_and_the_schema(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_glue_libs(tmp_path)) as archive:
        names = set(archive.namelist())
    assert {"glue_jobs/__init__.py", "mlkit/__init__.py", "mlkit/schema.py"} <= names
    assert any(n.startswith("glue_jobs/preprocess/") for n in names)


def test_model_tar_paths_are_relative_to_the_model_dir(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    for relative in ("1/saved_model.pb", "1/variables/variables.index", "code/inference.py", "evaluation.json"):
        (model_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / relative).write_text(relative)
    archive = pack_model_dir(model_dir, tmp_path / "out" / "model.tar.gz")
    members = _members(archive)
    assert set(members) == {"1/saved_model.pb", "1/variables/variables.index", "code/inference.py", "evaluation.json"}
    assert members["code/inference.py"] == b"code/inference.py"
    with tarfile.open(fileobj=io.BytesIO(archive.read_bytes()), mode="r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_600_000_000}
