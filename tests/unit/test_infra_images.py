"""Framework image URIs: from the sagemaker SDK per region, looked up with Fn::FindInMap at deploy time."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Template
from infra_helpers import bare_stack, new_app, synthesize

from infra.config import SERVING_TENSORFLOW_VERSION, TENSORFLOW_VERSION, TRAINING_PY_VERSION
from infra.constructs.framework_images import FrameworkImages
from infra.images import ImageUris, tensorflow_images

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def images() -> dict[str, ImageUris]:
    return tensorflow_images(
        TENSORFLOW_VERSION, TRAINING_PY_VERSION, "ml.m5.xlarge", "ml.m5.large", SERVING_TENSORFLOW_VERSION
    )


def test_image_uris_resolve_per_region(images: dict[str, ImageUris]) -> None:
    assert len(images) >= 30
    assert (
        images["us-east-1"].training
        == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19-cpu-py312"
    )
    assert (
        images["eu-west-1"].inference
        == "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.20-cpu-py312"
    )
    # Other partitions: other registry accounts and domains, as only the SDK knows.
    assert images["cn-north-1"].training.endswith(
        ".dkr.ecr.cn-north-1.amazonaws.com.cn/tensorflow-training:2.19-cpu-py312"
    )
    assert not images["us-gov-west-1"].training.startswith("763104351884.")
    for region, uris in images.items():
        assert f".dkr.ecr.{region}." in uris.training and f".dkr.ecr.{region}." in uris.inference


def test_gpu_instance_types_get_gpu_images() -> None:
    gpu = tensorflow_images(
        TENSORFLOW_VERSION, TRAINING_PY_VERSION, "ml.g5.xlarge", "ml.g5.xlarge", SERVING_TENSORFLOW_VERSION
    )
    assert gpu["us-east-1"].training.endswith(":2.19-gpu-py312")
    assert gpu["us-east-1"].inference.endswith(":2.20-gpu-py312")


def test_construct_maps_every_region_and_finds_by_the_deploying_region(images: dict[str, ImageUris]) -> None:
    stack = bare_stack()
    construct = FrameworkImages(stack, "Tf", images=images)
    ssm.StringParameter(stack, "Uses", string_value=construct.training_image)  # a template needs a resource
    mapping = Template.from_stack(stack).to_json()["Mappings"]["TfUris"]
    assert mapping["ap-southeast-2"]["Training"] == images["ap-southeast-2"].training
    assert mapping["us-east-1"]["Registry"] == "763104351884"
    assert stack.resolve(construct.training_image) == {"Fn::FindInMap": ["TfUris", {"Ref": "AWS::Region"}, "Training"]}
    assert construct.training_repository == "tensorflow-training"
    assert construct.inference_repository == "tensorflow-inference"


def test_a_fixed_region_without_images_is_refused(images: dict[str, ImageUris]) -> None:
    stack = Stack(new_app(), "Fixed", env=Environment(region="xx-nowhere-1"))
    with pytest.raises(ValueError, match="no images for region xx-nowhere-1"):
        FrameworkImages(stack, "Tf", images=images)


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_no_stack_hard_codes_a_region_or_account(stage: str) -> None:
    synthesized = synthesize(stage)
    for path in synthesized.template_paths():
        template = json.loads(path.read_text(encoding="utf-8"))
        body = {k: v for k, v in template.items() if k != "Mappings"}  # the image map is per region by design
        flat = str(body)
        assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx|cn)-[a-z]+-\d\b", flat), path.name
        assert not re.search(r"\b\d{12}\b", flat), path.name
        assert "arn:aws:" not in flat, path.name
