"""The kit's customer-managed KMS key: every bucket, topic and log group of a stage uses it."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class DataKey(Construct):
    """A rotating symmetric KMS key that AWS services of the kit may use on the account's behalf.

    Attributes:
        key: The key.
    """

    def __init__(self, scope: Construct, construct_id: str, *, alias: str, removal_policy: RemovalPolicy) -> None:
        """Create the key.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            alias: Alias name without the ``alias/`` prefix (carries the stage).
            removal_policy: ``RETAIN`` keeps the key (and so the data it protects) readable after a teardown.
        """
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{alias}",
            description=f"{alias}: data, artifacts, alerts and logs of the ML pipeline",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=Duration.days(7),
        )
        # CloudWatch Logs encrypts log groups (the pipeline's, Glue's) with the key as its own service
        # principal, scoped by the encryption context to this account's log groups.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryption",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.{Aws.URL_SUFFIX}")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        # CloudWatch alarms publish to the KMS-encrypted alerts topic as the CloudWatch service; without
        # this grant SNS drops every alarm notification.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
