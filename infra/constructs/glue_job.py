"""The preprocessing Glue job: the Beam pipeline of ``glue_jobs/`` on Glue 5.0 (Python 3.11)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.config import GLUE_VERSION, GlueSettings
from infra.constructs.asset_access import allow_reading
from infra.constructs.log_retention import retention_days
from infra.nag import acknowledge, resource_finding


@dataclass(frozen=True)
class GlueJobBuckets:
    """Where the job reads, writes and keeps temporary files.

    Attributes:
        raw: Input bucket (read-only).
        curated: Output bucket.
        temp: Bucket of Glue's temporary directory.
        temp_prefix: Prefix of the temporary directory, ending in ``/``.
        default_input_key: Raw CSV read when a run passes no ``--input``.
        default_output_prefix: Curated prefix written when a run passes no ``--output``.
        output_prefix: The only curated prefix the job may read and write (every run's output lies
            under it), ending in ``/``.
    """

    raw: s3.IBucket
    curated: s3.IBucket
    temp: s3.IBucket
    temp_prefix: str
    default_input_key: str
    default_output_prefix: str
    output_prefix: str

    def __post_init__(self) -> None:
        if not self.default_output_prefix.startswith(self.output_prefix):
            raise ValueError(
                f"default_output_prefix {self.default_output_prefix!r} lies outside output_prefix "
                f"{self.output_prefix!r}: the job could not write there"
            )


class PreprocessingJob(Construct):
    """A Glue ETL job running a Python entry script with packaged libraries.

    The entry script and the library archive are S3 assets; ``--extra-py-files`` puts the archive on
    the job's ``sys.path`` and ``--additional-python-modules`` installs exact versions of the
    third-party packages. Logs and bookmarks are KMS-encrypted through a Glue security configuration.

    Attributes:
        job: The job.
        job_name: Its name.
        role: The role the job runs as.
        script_asset: The uploaded entry script.
        libraries_asset: The uploaded library archive.
        log_group: The continuous-logging log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_name: str,
        script: Path,
        libraries: Path,
        python_modules: str,
        buckets: GlueJobBuckets,
        encryption_key: kms.IKey,
        settings: GlueSettings,
        log_retention: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        """Create the job and everything it runs with.

        Args:
            scope: Parent construct.
            construct_id: Construct id.
            job_name: Physical name (carries the stage).
            script: The entry script Glue runs.
            libraries: The ``.zip`` for ``--extra-py-files``.
            python_modules: The ``--additional-python-modules`` value (exact pins).
            buckets: Input, output and temporary locations.
            encryption_key: The key of the buckets; also encrypts the job's logs and bookmarks.
            settings: Worker type and count, timeout.
            log_retention: Days to keep the job's logs.
            removal_policy: Of the log group.

        Raises:
            ValueError: If the script or archive is missing or of the wrong kind.
        """
        super().__init__(scope, construct_id)
        if not script.is_file() or script.suffix != ".py":
            raise ValueError(f"{construct_id}: the entry script must be an existing .py file, got {script}")
        if not libraries.is_file() or libraries.suffix != ".zip":
            raise ValueError(f"{construct_id}: --extra-py-files must be an existing .zip file, got {libraries}")
        self.job_name = job_name
        self.script_asset = s3_assets.Asset(self, "Script", path=str(script))
        self.libraries_asset = s3_assets.Asset(self, "Libraries", path=str(libraries))
        log_group_name = f"/aws-glue/jobs/{job_name}"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=retention_days(log_retention),
            encryption_key=encryption_key,
            removal_policy=removal_policy,
        )
        self.role = self._role(buckets, encryption_key)
        security = glue.CfnSecurityConfiguration(
            self,
            "Security",
            name=f"{job_name}-security",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=encryption_key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=encryption_key.key_arn
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=encryption_key.key_arn
                    )
                ],
            ),
        )
        self.job = glue.CfnJob(
            self,
            "Job",
            name=job_name,
            description="Validate, deduplicate and split the raw CSV (Apache Beam); write baseline statistics",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=self.script_asset.s3_object_url
            ),
            default_arguments={
                "--job-language": "python",
                "--input": buckets.raw.s3_url_for_object(buckets.default_input_key),
                "--output": buckets.curated.s3_url_for_object(buckets.default_output_prefix),
                "--extra-py-files": self.libraries_asset.s3_object_url,
                "--additional-python-modules": python_modules,
                "--TempDir": buckets.temp.s3_url_for_object(buckets.temp_prefix),
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-continuous-log-filter": "true",
                "--continuous-log-logGroup": log_group_name,
                # Beam runs in the driver's Python; Spark's job bookmarks have nothing to track.
                "--job-bookmark-option": "job-bookmark-disable",
            },
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            max_retries=0,
            timeout=settings.timeout_minutes,
            worker_type=settings.worker_type,
            number_of_workers=settings.workers,
            security_configuration=security.ref,
        )
        # Created with its retention and key before the first run, or Glue would create it without.
        self.job.node.add_dependency(self.log_group)

    @property
    def job_arn(self) -> str:
        """ARN of the job."""
        return Stack.of(self).format_arn(service="glue", resource="job", resource_name=self.job_name)

    def _role(self, buckets: GlueJobBuckets, key: kms.IKey) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"Runs the Glue job {self.job_name}",
        )
        # Any raw key: a run may name its input (--input); outputs only under the runs' prefix.
        buckets.raw.grant_read(role)
        buckets.curated.grant_read_write(role, f"{buckets.output_prefix}*")
        buckets.temp.grant_read_write(role, f"{buckets.temp_prefix}*")
        allow_reading(role, self.script_asset, self.libraries_asset)
        key.grant_encrypt_decrypt(role)
        stack = Stack.of(self)
        glue_logs = stack.format_arn(
            service="logs", resource="log-group", resource_name="/aws-glue/*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="GlueLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
                # Glue derives its log group names from the security configuration and the role
                # (/aws-glue/jobs/<config>-role/<role>/...) besides the continuous-log group, so the
                # statement covers Glue's /aws-glue/ namespace of this account and region only.
                resources=[glue_logs, f"{glue_logs}:*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="GlueMetrics",
                actions=["cloudwatch:PutMetricData"],
                # PutMetricData has no resource-level permissions; the condition pins the namespace.
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self._acknowledge(role, buckets, glue_logs)
        return role

    def _acknowledge(self, role: iam.Role, buckets: GlueJobBuckets, glue_logs: str) -> None:
        def objects(bucket: s3.IBucket, pattern: str = "*") -> str:
            return resource_finding(role, bucket.arn_for_objects(pattern))

        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "grant_read/grant_read_write of the job's own buckets: the wildcards are S3 action families "
            "(Get/List/Delete/Abort) and the objects under the granted buckets and prefixes.",
            applies_to=[
                "Action::s3:GetObject*",
                "Action::s3:GetBucket*",
                "Action::s3:List*",
                "Action::s3:DeleteObject*",
                "Action::s3:Abort*",
                objects(buckets.raw),
                objects(buckets.curated, f"{buckets.output_prefix}*"),
                objects(buckets.temp, f"{buckets.temp_prefix}*"),
            ],
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
            "Glue names its log groups after the security configuration and role under /aws-glue/; "
            "PutMetricData supports no resource ARN and is restricted to the Glue namespace.",
            applies_to=[resource_finding(role, glue_logs), resource_finding(role, f"{glue_logs}:*"), "Resource::*"],
        )
