"""The ``code/`` directory of ``model.tar.gz``: what the TF Serving container imports per request.

Kept free of TensorFlow so that the test model of :mod:`mlkit.endpoint.testing` ships exactly the code
a training job ships.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import mlkit.schema
from mlkit.schema import DatasetSchema

INFERENCE_MODULE = "inference.inference"


class ServingCodeError(RuntimeError):
    """The inference handlers to ship cannot be found."""


def write_serving_code(model_dir: Path, schema: DatasetSchema, *, inference_script: Path | None = None) -> Path:
    """Copy the inference handlers and the schema into ``model_dir/code`` for the TF Serving container.

    The inference module is located through the import system (the ``inference`` package shipped in
    ``sourcedir.tar.gz``, or the repository's when run from a checkout), never relative to the working
    directory. The handlers import only the standard library and ``mlkit.schema``, shipped under
    ``code/lib`` (the container puts ``code/lib`` on ``sys.path``).

    Args:
        model_dir: The model directory (``SM_MODEL_DIR``).
        schema: The dataset schema, written as ``code/schema.json``.
        inference_script: Handlers to ship instead of the kit's (tests).

    Returns:
        The ``code`` directory.

    Raises:
        ServingCodeError: If ``inference/inference.py`` cannot be found.
    """
    if inference_script is None:
        spec = importlib.util.find_spec(INFERENCE_MODULE)
        if spec is None or spec.origin is None or not Path(spec.origin).is_file():
            raise ServingCodeError(
                f"cannot find the {INFERENCE_MODULE} module (inference/inference.py) to ship as code/inference.py; "
                "the sourcedir must contain the inference package"
            )
        inference_script = Path(spec.origin)
    code = model_dir / "code"
    lib = code / "lib" / "mlkit"
    lib.mkdir(parents=True, exist_ok=True)
    schema_module = Path(mlkit.schema.__file__)
    shutil.copyfile(inference_script, code / "inference.py")
    shutil.copyfile(schema_module.parent / "__init__.py", lib / "__init__.py")
    shutil.copyfile(schema_module, lib / "schema.py")
    (code / "schema.json").write_text(json.dumps(schema.to_dict(), indent=2) + "\n", encoding="utf-8")
    return code
