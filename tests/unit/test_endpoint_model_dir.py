"""Unpacking model.tar.gz and finding the version the TF Serving container would serve."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlkit.endpoint.model_dir import ModelLayoutError, extract_model, find_layout
from mlkit.endpoint_server import EndpointServer
from mlkit.packaging import pack_model_dir

pytestmark = pytest.mark.unit


def model_dir(root: Path, *files: str) -> Path:
    """A model directory holding empty ``files`` (a SavedModel is recognised by its saved_model.pb)."""
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def test_numeric_version_directory_is_found(tmp_path: Path) -> None:
    layout = find_layout(model_dir(tmp_path, "1/saved_model.pb", "1/variables/variables.index", "evaluation.json"))
    assert (layout.version, layout.version_dir, layout.versions) == (1, tmp_path / "1", (1,))
    assert layout.code_dir is None
    assert not layout.uses_python_service


def test_highest_version_is_served_and_leading_zeros_are_allowed(tmp_path: Path) -> None:
    layout = find_layout(model_dir(tmp_path, "0000001/saved_model.pb", "12/saved_model.pb", "3/saved_model.pb"))
    assert (layout.version, layout.version_dir.name, layout.versions) == (12, "12", (1, 3, 12))


def test_code_directory_is_described(tmp_path: Path) -> None:
    layout = find_layout(model_dir(tmp_path, "1/saved_model.pb", "code/inference.py", "code/lib/mlkit/schema.py"))
    assert layout.inference_script == tmp_path / "code" / "inference.py"
    assert layout.lib_dir == tmp_path / "code" / "lib"
    assert layout.requirements is None
    assert layout.uses_python_service
    lib_only = find_layout(model_dir(tmp_path / "other", "1/saved_model.pb", "code/requirements.txt"))
    assert lib_only.inference_script is None and lib_only.uses_python_service


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["0000000/saved_model.pb"], r"'0000000' is version 0: TF Serving needs a positive integer, such as 1/"),
        (["1/saved_model.pb", "0/saved_model.pb"], r"'0' is version 0"),
        (["export/saved_model.pb"], r"'export' is not a model version: .* named by a positive integer, such as 1/"),
        (["v1/saved_model.pb", "1/saved_model.pb"], r"'v1' is not a model version"),
        (["saved_model.pb", "variables/variables.index"], r"saved_model.pb at its top level"),
        (["code/inference.py", "evaluation.json"], r"no SavedModel found .* must contain 1/saved_model.pb"),
        (["1/saved_model.pb", "01/saved_model.pb"], r"'01' and '1' are both version 1"),
    ],
)
def test_layouts_the_container_cannot_serve_are_rejected(tmp_path: Path, files: list[str], message: str) -> None:
    with pytest.raises(ModelLayoutError, match=message):
        find_layout(model_dir(tmp_path, *files))


def test_archive_is_unpacked_into_a_model_directory(tmp_path: Path) -> None:
    archive = pack_model_dir(model_dir(tmp_path / "src", "1/saved_model.pb", "code/inference.py"), tmp_path / "m.tgz")
    (tmp_path / "dest").mkdir()
    root = extract_model(archive, tmp_path / "dest")
    assert root == tmp_path / "dest" / "model"
    assert find_layout(root).inference_script == root / "code" / "inference.py"


def test_unsafe_or_broken_archives_are_rejected(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    for archive, message in (
        (evil, r"cannot unpack .*outside"),
        (tmp_path / "missing.tar.gz", r"model archive not found"),
        (model_dir(tmp_path, "garbage.tar.gz") / "garbage.tar.gz", r"cannot unpack"),
    ):
        dest = tmp_path / archive.name.replace(".", "_")
        dest.mkdir()
        with pytest.raises(ModelLayoutError, match=message):
            extract_model(archive, dest)
    assert not (tmp_path / "outside.txt").exists()


def test_server_reports_a_bad_layout_on_ping_and_wait_ready(tmp_path: Path) -> None:
    archive = pack_model_dir(model_dir(tmp_path / "src", "0000000/saved_model.pb"), tmp_path / "model.tar.gz")
    server = EndpointServer(archive, workdir=tmp_path / "work")
    server.start()
    try:
        with pytest.raises(ModelLayoutError, match=r"'0000000' is version 0"):
            server.wait_ready(timeout=60)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{server.url}/ping", timeout=10)
        assert answer.value.code == 500
        assert "'0000000' is version 0" in json.loads(answer.value.read())["error"]
    finally:
        server.stop()
    assert not any((tmp_path / "work").iterdir())  # the unpacked copy is removed
