"""The training pipeline state machine: preprocess, train, gate, register, deploy.

One definition for AWS and LocalStack: SageMaker steps poll (Describe + Wait + Choice) instead of
``.sync``, and only JSONPath features that LocalStack 4.13.1's interpreter shares with AWS are used.
"""

from infra.constructs.pipeline.state_machine import PipelineResources, TrainingPipeline

__all__ = ["PipelineResources", "TrainingPipeline"]
