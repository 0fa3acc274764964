"""The one SNS topic that every alarm and every pipeline failure notifies."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class AlertsTopic(Construct):
    """A KMS-encrypted, TLS-only topic with an optional e-mail subscription.

    Attributes:
        topic: The topic.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic_name: str,
        encryption_key: kms.IKey,
        email: str | None = None,
    ) -> None:
        """Create the topic.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            topic_name: Physical name (carries the stage).
            encryption_key: Server-side encryption key; its policy must let CloudWatch use it.
            email: Address to subscribe; AWS mails a confirmation link first. ``None``: no subscription.
        """
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=topic_name,
            display_name=topic_name,
            master_key=encryption_key,
            enforce_ssl=True,
        )
        if email is not None:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
