"""Region-correct URIs of the prebuilt SageMaker TensorFlow containers, from the ``sagemaker`` SDK.

The DLC account differs per region (and the domain per partition), so the stacks carry a region map
built here at synth time and look the deploying region up with ``Fn::FindInMap``: no region is
hard-coded, and a region without the images fails the deployment instead of pulling the wrong image.

Asking the SDK costs seconds per synth (it re-reads its JSON for each of ~80 lookups), so the answer
is cached on disk, keyed by the SDK version and every argument.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from infra.assets import BUILD_DIR

_CACHE_DIR = BUILD_DIR / "cache"


class ImageLookupError(ValueError):
    """The SageMaker SDK lists no region with the configured container images."""


_FRAMEWORK = "tensorflow"


@dataclass(frozen=True)
class ImageUris:
    """The training and serving image of one region."""

    training: str
    inference: str


@cache
def tensorflow_images(
    version: str, py_version: str, training_instance_type: str, inference_instance_type: str, serving_version: str
) -> dict[str, ImageUris]:
    """Return the TF training and inference image URIs for every region that has both.

    Args:
        version: TensorFlow ``major.minor`` of the training image, e.g. ``2.19``.
        py_version: Python of the training image, e.g. ``py312``.
        training_instance_type: Decides the CPU or GPU training image.
        inference_instance_type: Decides the CPU or GPU serving image.
        serving_version: TensorFlow Serving ``major.minor`` of the inference image, e.g. ``2.20``.

    Returns:
        ``{region: ImageUris}``, sorted by region.

    Raises:
        ImageLookupError: If the SDK knows no region with both images (an unsupported version).
    """
    arguments = [version, py_version, training_instance_type, inference_instance_type, serving_version]
    key = hashlib.sha256(json.dumps([metadata.version("sagemaker"), *arguments]).encode()).hexdigest()[:16]
    cached = _CACHE_DIR / f"tensorflow-images-{key}.json"
    if cached.is_file():
        raw = json.loads(cached.read_text(encoding="utf-8"))
    else:
        raw = _ask_sdk(*arguments)
        _CACHE_DIR.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(raw, indent=1, sort_keys=True), encoding="utf-8")
    if not raw:
        raise ImageLookupError(
            f"the sagemaker SDK lists no region with TensorFlow {version} training"
            f" and TensorFlow Serving {serving_version} images"
        )
    return {region: ImageUris(**uris) for region, uris in sorted(raw.items())}


def _ask_sdk(
    version: str, py_version: str, training_instance_type: str, inference_instance_type: str, serving_version: str
) -> dict[str, dict[str, str]]:
    # Imported here: the SDK takes seconds to import and only a cache miss needs it.
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(_FRAMEWORK)
    regions: set[str] | None = None
    for scope, scope_version in (("training", version), ("inference", serving_version)):
        scope_config = config[scope]
        full_version = scope_config.get("version_aliases", {}).get(scope_version, scope_version)
        found = set(scope_config["versions"].get(full_version, {}).get("registries", {}))
        regions = found if regions is None else regions & found
    uris: dict[str, dict[str, str]] = {}
    for region in sorted(regions or ()):
        uris[region] = {
            "training": str(
                image_uris.retrieve(
                    _FRAMEWORK,
                    region=region,
                    version=version,
                    py_version=py_version,
                    instance_type=training_instance_type,
                    image_scope="training",
                )
            ),
            "inference": str(
                image_uris.retrieve(
                    _FRAMEWORK,
                    region=region,
                    version=serving_version,
                    instance_type=inference_instance_type,
                    image_scope="inference",
                )
            ),
        }
    return uris


def cache_dir() -> Path:
    """Where looked-up image URIs are cached (under the ignored ``build/`` folder)."""
    return _CACHE_DIR
