"""An S3 bucket with the kit's baseline: encrypted, private, TLS-only, logged, explicit lifecycle."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Every bucket drops the parts of multipart uploads that were never completed.
ABORT_INCOMPLETE_UPLOADS = s3.LifecycleRule(
    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
)


class EncryptedBucket(Construct):
    """A private bucket encrypted with the kit's KMS key and logged to the access-log bucket.

    The access-log bucket itself is the one exception (``access_log_target=True``): S3 server access
    logging cannot deliver to a bucket whose default encryption is SSE-KMS, so that bucket uses SSE-S3
    (AES-256), and it does not log its own accesses (that would log every log delivery, endlessly).
    cdk-nag accepts both without acknowledgement: it recognises the bucket as a log target.

    Attributes:
        bucket: The bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str,
        removal_policy: RemovalPolicy,
        encryption_key: kms.IKey | None = None,
        access_logs: s3.IBucket | None = None,
        versioned: bool = False,
        lifecycle_rules: Sequence[s3.LifecycleRule] = (),
        access_log_target: bool = False,
    ) -> None:
        """Create the bucket.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            bucket_name: Physical name (globally unique; carries the stage).
            removal_policy: ``RETAIN`` in production. ``DESTROY`` deletes the bucket with its stack
                once it is empty; objects are never auto-deleted (that needs a Lambda-backed resource).
            encryption_key: KMS key of the default encryption; required unless ``access_log_target``.
            access_logs: Bucket receiving this bucket's server access logs; required unless
                ``access_log_target``.
            versioned: Keep previous object versions.
            lifecycle_rules: Expiry rules of temporary data, besides aborting stale multipart uploads.
            access_log_target: This is the access-log bucket (SSE-S3, not logged itself).

        Raises:
            ValueError: If the key or the access-log bucket is missing for an ordinary bucket.
        """
        super().__init__(scope, construct_id)
        if not access_log_target and (encryption_key is None or access_logs is None):
            raise ValueError(f"{construct_id}: an ordinary bucket needs encryption_key and access_logs")
        if access_log_target and (encryption_key is not None or access_logs is not None):
            raise ValueError(f"{construct_id}: the access-log bucket takes no KMS key and logs nowhere")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED if access_log_target else s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            # S3 Bucket Keys cut KMS requests (and their cost) by orders of magnitude for the same protection.
            bucket_key_enabled=None if access_log_target else True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=versioned,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{bucket_name}/" if access_logs is not None else None,
            lifecycle_rules=[ABORT_INCOMPLETE_UPLOADS, *lifecycle_rules],
            removal_policy=removal_policy,
        )
