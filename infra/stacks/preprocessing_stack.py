"""Preprocessing: the Glue job that validates and splits the raw data with Apache Beam."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from constructs import Construct

from infra import assets
from infra.config import StageConfig
from infra.constructs.glue_job import GlueJobBuckets, PreprocessingJob
from infra.pins import glue_python_modules
from infra.stacks.data_stack import CURATED_RUNS_PREFIX, GLUE_TEMP_PREFIX, DataStack

#: Curated prefix written by runs started outside the pipeline (the pipeline passes its own).
MANUAL_RUNS_PREFIX = f"{CURATED_RUNS_PREFIX}manual/"


class PreprocessingStack(Stack):
    """The Glue job, its role, security configuration, logs and code assets.

    Attributes:
        job: The preprocessing job.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, data: DataStack, **kwargs: Any
    ) -> None:
        """Create the preprocessing job of ``config``'s stage over ``data``'s buckets."""
        super().__init__(scope, construct_id, **kwargs)
        buckets = data.buckets_for(self)
        self.job = PreprocessingJob(
            self,
            "Preprocess",
            job_name=config.glue_job_name,
            script=assets.glue_entry_script(),
            libraries=assets.glue_libraries(),
            python_modules=glue_python_modules(config.glue.python_modules),
            buckets=GlueJobBuckets(
                raw=buckets.raw,
                curated=buckets.curated,
                temp=buckets.artifacts,
                temp_prefix=GLUE_TEMP_PREFIX,
                default_input_key=config.raw_input_key,
                default_output_prefix=MANUAL_RUNS_PREFIX,
                output_prefix=CURATED_RUNS_PREFIX,
            ),
            encryption_key=buckets.key,
            settings=config.glue,
            log_retention=config.retention.log_days,
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
