"""Execution roles of SageMaker: one for training jobs, one for the models behind the endpoint."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.constructs.asset_access import allow_reading
from infra.constructs.framework_images import FrameworkImages
from infra.nag import acknowledge, resource_finding


class SageMakerRoles(Construct):
    """Least-privilege execution roles of training jobs and of the endpoint's models.

    Training reads curated data and the code asset and writes model artifacts; hosting reads model
    artifacts and writes captured requests. Both pull only their own framework image.

    Attributes:
        training: Role of training jobs.
        hosting: Role of models (endpoint containers).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        curated: s3.IBucket,
        curated_prefix: str,
        artifacts: s3.IBucket,
        artifacts_prefix: str,
        capture: s3.IBucket,
        sourcedir: s3_assets.Asset,
        images: FrameworkImages,
        encryption_key: kms.IKey,
    ) -> None:
        """Create both roles.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            curated: Bucket of the training channels.
            curated_prefix: Prefix of the channels (``runs/``).
            artifacts: Bucket of the training output.
            artifacts_prefix: Prefix of the training output (``training/``).
            capture: Bucket of captured endpoint requests.
            sourcedir: The script-mode code asset.
            images: The framework images (their ECR repositories).
            encryption_key: The kit's key (buckets, volumes, capture).
        """
        super().__init__(scope, construct_id)
        self.training, training_logs = self._role("Training", "training jobs", "TrainingJobs")
        curated.grant_read(self.training, f"{curated_prefix}*")
        artifacts.grant_read_write(self.training, f"{artifacts_prefix}*")
        allow_reading(self.training, sourcedir)
        self._pull_images(self.training, images.repository_arn(images.training_repository))

        self.hosting, hosting_logs = self._role("Hosting", "the endpoint's models", "Endpoints")
        artifacts.grant_read(self.hosting, f"{artifacts_prefix}*")
        capture.grant_put(self.hosting)
        self._pull_images(self.hosting, images.repository_arn(images.inference_repository))

        for role in (self.training, self.hosting):
            encryption_key.grant_encrypt_decrypt(role)
            # SageMaker attaches the key to the ML storage volumes through grants made as this role.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="VolumeKeyGrants",
                    actions=["kms:CreateGrant", "kms:DescribeKey"],
                    resources=[encryption_key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        self._acknowledge(
            {
                # grant_read_write: Get/List/Delete/Abort families.
                self.training: (
                    ["GetObject*", "GetBucket*", "List*", "DeleteObject*", "Abort*"],
                    [
                        curated.arn_for_objects(f"{curated_prefix}*"),
                        artifacts.arn_for_objects(f"{artifacts_prefix}*"),
                        *training_logs,
                    ],
                ),
                # grant_read and grant_put: Get/List families, Abort* for multipart uploads.
                self.hosting: (
                    ["GetObject*", "GetBucket*", "List*", "Abort*"],
                    [artifacts.arn_for_objects(f"{artifacts_prefix}*"), capture.arn_for_objects("*"), *hosting_logs],
                ),
            }
        )

    def _role(self, construct_id: str, what: str, log_family: str) -> tuple[iam.Role, list[str]]:
        role = iam.Role(
            self, construct_id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"), description=f"Runs {what}"
        )
        log_groups = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/{log_family}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ContainerLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                # SageMaker names one log stream per job or instance inside its own log group family.
                resources=[log_groups, f"{log_groups}:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ContainerMetrics",
                actions=["cloudwatch:PutMetricData"],
                # PutMetricData has no resource-level permissions; the condition pins SageMaker's namespaces.
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
            )
        )
        return role, [log_groups, f"{log_groups}:*"]

    @staticmethod
    def _pull_images(role: iam.Role, repository_arn: str) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullFrameworkImage",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[repository_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                # GetAuthorizationToken is account-wide by design: it takes no resource ARN.
                resources=["*"],
            )
        )

    def _acknowledge(self, grants: dict[iam.Role, tuple[list[str], list[str]]]) -> None:
        for role, (actions, resources) in grants.items():
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "S3 grants of the kit's own buckets: the wildcards are S3 action families and the objects under "
                "the granted prefixes (a job or endpoint reads and writes keys it names at run time).",
                applies_to=[*(f"Action::s3:{a}" for a in actions), *(resource_finding(role, r) for r in resources)],
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "KMS data-key generation and re-encryption action families on the kit's single key.",
                applies_to=["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "ecr:GetAuthorizationToken and cloudwatch:PutMetricData take no resource ARN (the latter is "
                "pinned to SageMaker's namespaces); SageMaker names the log streams in its log group family.",
                applies_to=["Resource::*"],
            )
