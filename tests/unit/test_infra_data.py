"""Buckets and key: encrypted, private, TLS-only, logged, lifecycle on temporary data, stage-driven removal."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from infra_helpers import bare_stack, synthesize

from infra.config import ConfigError
from infra.constructs.data_key import DataKey
from infra.constructs.encrypted_bucket import EncryptedBucket
from infra.stacks.data_stack import bucket_name
from infra.stages import DEV

pytestmark = pytest.mark.unit

TLS_ONLY = Match.object_like(
    {
        "Effect": "Deny",
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Principal": {"AWS": "*"},
    }
)


def _buckets() -> Template:
    stack = bare_stack()
    key = kms.Key(stack, "Key")
    logs = EncryptedBucket(
        stack, "Logs", bucket_name="logs-bucket", removal_policy=RemovalPolicy.DESTROY, access_log_target=True
    ).bucket
    EncryptedBucket(
        stack,
        "Data",
        bucket_name="data-bucket",
        removal_policy=RemovalPolicy.RETAIN,
        encryption_key=key,
        access_logs=logs,
        versioned=True,
        lifecycle_rules=[s3.LifecycleRule(id="expire-tmp", prefix="tmp/", expiration=Duration.days(3))],
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def buckets() -> Template:
    return _buckets()


def test_data_bucket_is_kms_encrypted_private_versioned_and_logged(buckets: Template) -> None:
    buckets.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "data-bucket",
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                    }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "data-bucket/"},
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {"Id": "abort-incomplete-uploads", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
                    ),
                    Match.object_like({"Id": "expire-tmp", "Prefix": "tmp/", "ExpirationInDays": 3}),
                ]
            },
        },
    )


def test_access_log_bucket_uses_sse_s3_because_log_delivery_cannot_use_kms(buckets: Template) -> None:
    buckets.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "logs-bucket",
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "LoggingConfiguration": Match.absent(),
        },
    )


def test_every_bucket_denies_plain_http(buckets: Template) -> None:
    buckets.resource_count_is("AWS::S3::BucketPolicy", 2)
    buckets.all_resources_properties(
        "AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([TLS_ONLY])}}
    )


def test_removal_policy_is_explicit_and_never_lambda_backed(buckets: Template) -> None:
    buckets.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "Properties": {"BucketName": "data-bucket"}})
    buckets.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Delete", "Properties": {"BucketName": "logs-bucket"}})
    buckets.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    buckets.resource_count_is("AWS::Lambda::Function", 0)


def test_an_ordinary_bucket_needs_a_key_and_a_log_target() -> None:
    stack = bare_stack()
    with pytest.raises(ValueError, match="needs encryption_key and access_logs"):
        EncryptedBucket(stack, "Bad", bucket_name="b", removal_policy=RemovalPolicy.DESTROY)
    with pytest.raises(ValueError, match="takes no KMS key"):
        EncryptedBucket(
            stack,
            "Bad2",
            bucket_name="c",
            removal_policy=RemovalPolicy.DESTROY,
            encryption_key=kms.Key(stack, "K"),
            access_log_target=True,
        )


def test_key_rotates_and_lets_logs_and_alarms_use_it() -> None:
    stack = bare_stack()
    DataKey(stack, "Key", alias="mlkit-test", removal_policy=RemovalPolicy.RETAIN)
    template = Template.from_stack(stack)
    template.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Retain", "Properties": {"EnableKeyRotation": True}})
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/mlkit-test"})
    statements = template.find_resources("AWS::KMS::Key")
    (key,) = statements.values()
    sids = {s.get("Sid") for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert {"CloudWatchLogsEncryption", "CloudWatchAlarmsToEncryptedTopic"} <= sids


@pytest.mark.parametrize(("stage", "policy"), [("dev", "Delete"), ("prod", "Retain")])
def test_data_stack_has_five_buckets_and_one_key_removed_per_stage(stage: str, policy: str) -> None:
    template = synthesize(stage).template("data")
    template.resource_count_is("AWS::S3::Bucket", 5)
    template.resource_count_is("AWS::KMS::Key", 1)
    for bucket in template.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == policy
        name = bucket["Properties"]["BucketName"]["Fn::Join"][1][0]
        assert name.startswith(f"mlkit-{stage}-")
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": {
                "Fn::Join": ["", [f"mlkit-{stage}-artifacts-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": {
                "Fn::Join": ["", [f"mlkit-{stage}-data-capture-", Match.any_value(), "-", Match.any_value()]]
            },
            "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({"Id": "expire-capture"})])},
        },
    )
    template.resource_count_is("AWS::Lambda::Function", 0)


def test_a_prefix_too_long_for_bucket_names_is_a_clear_error() -> None:
    long = dataclasses.replace(DEV, project="mlkit-analytics-team")  # prefix of 24 characters
    with pytest.raises(ConfigError, match="mlkit-analytics-team-dev-data-capture-<account>-<region> can reach 65"):
        bucket_name(long, "data-capture")
    assert bucket_name(dataclasses.replace(long, region="us-east-1"), "data-capture")  # a known region fits
