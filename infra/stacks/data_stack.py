"""Data: the KMS key and the five buckets every other unit reads or writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ConfigError, StageConfig
from infra.constructs.data_key import DataKey
from infra.constructs.encrypted_bucket import EncryptedBucket

#: Prefix of the curated bucket under which each pipeline run writes its splits.
CURATED_RUNS_PREFIX = "runs/"
#: Prefixes of the artifacts bucket.
TRAINING_OUTPUT_PREFIX = "training/"
GLUE_TEMP_PREFIX = "glue-temp/"


#: S3 bucket names hold at most 63 characters.
_MAX_BUCKET_NAME = 63
#: The longest AWS region names (``ap-southeast-5``...), for stacks that leave the region to deploy time.
_LONGEST_REGION = 14


def bucket_name(config: StageConfig, purpose: str) -> str:
    """Return a bucket's physical name; account and region keep global names apart.

    Raises:
        ConfigError: If the name could exceed S3's 63 characters in some region (found at synthesis,
            not halfway through a deployment).
    """
    region = len(config.region) if config.region else _LONGEST_REGION
    longest = len(f"{config.prefix}-{purpose}-") + 12 + 1 + region
    if longest > _MAX_BUCKET_NAME:
        raise ConfigError(
            f"bucket name {config.prefix}-{purpose}-<account>-<region> can reach {longest} characters, over S3's "
            f"{_MAX_BUCKET_NAME}: shorten the project or stage name (prefix {config.prefix!r})"
        )
    return f"{config.prefix}-{purpose}-{Aws.ACCOUNT_ID}-{Aws.REGION}"


@dataclass(frozen=True)
class DataBuckets:
    """The data buckets and key as another stack sees them.

    Attributes:
        raw: Raw input data.
        curated: Per-run splits.
        artifacts: Training output and Glue's temporary directory.
        capture: Captured endpoint requests.
        key: The key that encrypts them.
    """

    raw: s3.IBucket
    curated: s3.IBucket
    artifacts: s3.IBucket
    capture: s3.IBucket
    key: kms.IKey


class DataStack(Stack):
    """KMS key and buckets: raw, curated, artifacts, data capture and access logs.

    Attributes:
        key: The stage's KMS key.
        raw: Raw input data.
        curated: Preprocessed splits, baseline statistics and rejected rows, one prefix per run.
        artifacts: Training output (``model.tar.gz``), versioned; Glue's temporary directory.
        capture: Captured endpoint requests and responses.
        access_logs: Server access logs of the other four.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        """Create the key and the buckets of ``config``'s stage."""
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        days = config.retention
        self.config = config
        self.key = DataKey(self, "DataKey", alias=config.prefix, removal_policy=removal).key

        self.access_logs = EncryptedBucket(
            self,
            "AccessLogs",
            bucket_name=bucket_name(config, "access-logs"),
            removal_policy=removal,
            access_log_target=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(days.access_log_days))],
        ).bucket

        def data_bucket(construct_id: str, purpose: str, **options: Any) -> s3.IBucket:
            return EncryptedBucket(
                self,
                construct_id,
                bucket_name=bucket_name(config, purpose),
                removal_policy=removal,
                encryption_key=self.key,
                access_logs=self.access_logs,
                **options,
            ).bucket

        self.raw = data_bucket("Raw", "raw")
        self.curated = data_bucket(
            "Curated",
            "curated",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-runs", prefix=CURATED_RUNS_PREFIX, expiration=Duration.days(days.curated_days)
                )
            ],
        )
        self.artifacts = data_bucket(
            "Artifacts",
            "artifacts",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(days.noncurrent_artifact_days),
                ),
                s3.LifecycleRule(
                    id="expire-glue-temp", prefix=GLUE_TEMP_PREFIX, expiration=Duration.days(days.glue_temp_days)
                ),
            ],
        )
        self.capture = data_bucket(
            "Capture",
            "data-capture",
            lifecycle_rules=[s3.LifecycleRule(id="expire-capture", expiration=Duration.days(days.capture_days))],
        )

    def buckets_for(self, scope: Construct) -> DataBuckets:
        """Return the buckets imported into ``scope``'s stack by their deterministic names.

        Only the key crosses stacks as an export; bucket ARNs are rebuilt from the names in the
        consuming stack, so its IAM statements name the buckets literally and no bucket export pins
        this stack in place.
        """
        imported = {
            purpose: s3.Bucket.from_bucket_attributes(
                scope, f"{construct_id}Bucket", bucket_name=bucket_name(self.config, purpose), encryption_key=self.key
            )
            for construct_id, purpose in (
                ("Raw", "raw"),
                ("Curated", "curated"),
                ("Artifacts", "artifacts"),
                ("Capture", "data-capture"),
            )
        }
        return DataBuckets(
            raw=imported["raw"],
            curated=imported["curated"],
            artifacts=imported["artifacts"],
            capture=imported["data-capture"],
            key=self.key,
        )
