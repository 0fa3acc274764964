"""Read access to one uploaded CDK asset object, and nothing else of the shared assets bucket."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets


def allow_reading(grantee: iam.IGrantable, *assets: s3_assets.Asset) -> None:
    """Let ``grantee`` download exactly these asset objects.

    ``Asset.grant_read`` grants the whole bootstrap bucket (every asset of every app in the account);
    a runtime only needs its own code. The bootstrap bucket's default encryption uses the AWS-managed
    S3 key, which S3 applies for any principal allowed to read the object.
    """
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadCodeAssets",
            actions=["s3:GetObject"],
            resources=[asset.bucket.arn_for_objects(asset.s3_object_key) for asset in assets],
        )
    )
