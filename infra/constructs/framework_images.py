"""The prebuilt TensorFlow training and serving images, looked up per region at deploy time."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, CfnMapping, Stack, Token
from constructs import Construct

from infra.images import ImageUris

TRAINING_KEY = "Training"
INFERENCE_KEY = "Inference"
REGISTRY_KEY = "Registry"


class FrameworkImages(Construct):
    """A region -> image URI ``CfnMapping``; the URIs resolve with ``Fn::FindInMap`` on ``AWS::Region``.

    Attributes:
        mapping: The mapping (one entry per region that has both images).
        training_image: URI of the training image in the deploying region (a token).
        inference_image: URI of the serving image in the deploying region (a token).
        registry_account: Account of the images' ECR registry in the deploying region (a token).
        training_repository: ECR repository name of the training image.
        inference_repository: ECR repository name of the serving image.
    """

    def __init__(self, scope: Construct, construct_id: str, *, images: Mapping[str, ImageUris]) -> None:
        """Create the mapping.

        Args:
            scope: Parent construct.
            construct_id: Construct id (also names the mapping).
            images: URIs by region, e.g. from :func:`infra.images.tensorflow_images`.

        Raises:
            ValueError: If ``images`` is empty, or the stack's fixed region is not in it.
        """
        super().__init__(scope, construct_id)
        if not images:
            raise ValueError(f"{construct_id}: no region has the images")
        stack = Stack.of(self)
        region = stack.region
        if not Token.is_unresolved(region) and region not in images:
            raise ValueError(f"{construct_id}: no images for region {region}; available: {', '.join(images)}")
        self.mapping = CfnMapping(
            stack,
            f"{construct_id}Uris",
            mapping={
                r: {TRAINING_KEY: uris.training, INFERENCE_KEY: uris.inference, REGISTRY_KEY: _account(uris)}
                for r, uris in images.items()
            },
        )
        self.training_image = self.mapping.find_in_map(Aws.REGION, TRAINING_KEY)
        self.inference_image = self.mapping.find_in_map(Aws.REGION, INFERENCE_KEY)
        self.registry_account = self.mapping.find_in_map(Aws.REGION, REGISTRY_KEY)
        self.training_repository = _single({_repository(u.training) for u in images.values()})
        self.inference_repository = _single({_repository(u.inference) for u in images.values()})

    def repository_arn(self, repository: str) -> str:
        """Return the ARN of an image repository (``tensorflow-training``...) in the deploying region."""
        return Stack.of(self).format_arn(
            service="ecr", account=self.registry_account, resource="repository", resource_name=repository
        )


def _account(uris: ImageUris) -> str:
    return _single({uri.split(".", 1)[0] for uri in (uris.training, uris.inference)})


def _repository(uri: str) -> str:
    # <account>.dkr.ecr.<region>.<domain>/<repository>:<tag>
    return uri.split("/", 1)[1].rsplit(":", 1)[0]


def _single(values: set[str]) -> str:
    if len(values) != 1:
        raise ValueError(f"expected one registry or repository for all images, got {sorted(values)}")
    return values.pop()
