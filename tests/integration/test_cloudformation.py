"""CloudFormation creates the resource types community LocalStack would skip, through the kit's providers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mlkit.local.deploy import check_resources

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::000000000000:role/cfn"


def _template(model_data: str, bucket: str, unique: str) -> dict[str, Any]:
    endpoint = f"cfn-ep-{unique}"
    return {
        "Resources": {
            "Group": {
                "Type": "AWS::SageMaker::ModelPackageGroup",
                "Properties": {"ModelPackageGroupName": f"cfn-group-{unique}", "ModelPackageGroupDescription": "d"},
            },
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {
                    "ExecutionRoleArn": ROLE,
                    "PrimaryContainer": {"Image": "tfs", "ModelDataUrl": model_data},
                },
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                            "InitialVariantWeight": 1,
                        }
                    ],
                    "DataCaptureConfig": {
                        "EnableCapture": True,
                        "InitialSamplingPercentage": 100,
                        "DestinationS3Uri": f"s3://{bucket}/cfn-capture",
                        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                    },
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {
                    "EndpointName": endpoint,
                    "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]},
                },
            },
            "Job": {
                "Type": "AWS::Glue::Job",
                "Properties": {
                    "Name": f"cfn-job-{unique}",
                    "Role": ROLE,
                    "Command": {
                        "Name": "glueetl",
                        "ScriptLocation": f"s3://{bucket}/code/job.py",
                        "PythonVersion": "3",
                    },
                    "GlueVersion": "5.0",
                    "WorkerType": "G.1X",
                    "NumberOfWorkers": 2,
                    "DefaultArguments": {"--enable-metrics": "true"},
                    "ExecutionProperty": {"MaxConcurrentRuns": 1},
                },
            },
            "Dashboard": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {"DashboardName": f"cfn-dash-{unique}", "DashboardBody": json.dumps({"widgets": []})},
            },
            "Target": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "DependsOn": "Endpoint",
                "Properties": {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": f"endpoint/{endpoint}/variant/AllTraffic",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                    "MinCapacity": 1,
                    "MaxCapacity": 2,
                },
            },
            "Policy": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {
                    "PolicyName": f"invocations-{unique}",
                    "PolicyType": "TargetTrackingScaling",
                    "ScalingTargetId": {"Ref": "Target"},
                    "TargetTrackingScalingPolicyConfiguration": {
                        "TargetValue": 100,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                        },
                    },
                },
            },
        },
        "Outputs": {
            "ModelArn": {"Value": {"Ref": "Model"}},
            "EndpointName": {"Value": {"Fn::GetAtt": ["Endpoint", "EndpointName"]}},
            "JobName": {"Value": {"Ref": "Job"}},
            "GroupArn": {"Value": {"Ref": "Group"}},
        },
    }


def test_skipped_types_are_really_created_and_deleted(
    aws: Callable[[str], Any], trained: dict[str, Any], bucket: str, unique: str
) -> None:
    cloudformation, sagemaker = aws("cloudformation"), aws("sagemaker")
    stack = f"plugin-resources-{unique}"
    template = _template(trained["ModelArtifacts"]["S3ModelArtifacts"], bucket, unique)

    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
    )

    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    assert len(resources) == len(template["Resources"])
    assert all(r["PhysicalResourceId"] not in ("", "unknown") for r in resources), resources
    counts, unknown = check_resources(cloudformation)
    assert counts[stack] == len(template["Resources"])
    assert not [u for u in unknown if u.startswith(f"{stack}/")]
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    assert outputs["EndpointName"] == f"cfn-ep-{unique}"
    assert outputs["JobName"] == f"cfn-job-{unique}"
    assert outputs["ModelArn"].startswith("arn:aws:sagemaker:")
    assert sagemaker.describe_endpoint(EndpointName=f"cfn-ep-{unique}")["EndpointStatus"] == "InService"
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=f"cfn-group-{unique}")
    assert aws("glue").get_job(JobName=f"cfn-job-{unique}")["Job"]["NumberOfWorkers"] == 2
    assert aws("cloudwatch").get_dashboard(DashboardName=f"cfn-dash-{unique}")["DashboardBody"]
    policies = aws("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert f"invocations-{unique}" in {p["PolicyName"] for p in policies}

    cloudformation.delete_stack(StackName=stack)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
    )

    assert f"cfn-ep-{unique}" not in {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
    with pytest.raises(aws("glue").exceptions.EntityNotFoundException):
        aws("glue").get_job(JobName=f"cfn-job-{unique}")


def test_stack_with_region_lookups_can_be_updated(aws: Callable[[str], Any], unique: str) -> None:
    # CDK writes region-specific values as FindInMap with {"Ref": "AWS::Region"}; LocalStack 4.13.1 alone
    # answers 501 to any update of such a stack (the plugin's start-up fix).
    def template(name: str) -> str:
        return json.dumps(
            {
                "Mappings": {"Images": {"us-east-1": {"Uri": "east"}, "eu-west-1": {"Uri": "west"}}},
                "Resources": {
                    "Parameter": {
                        "Type": "AWS::SSM::Parameter",
                        "Properties": {
                            "Name": name,
                            "Type": "String",
                            "Value": {"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Uri"]},
                        },
                    }
                },
            }
        )

    cloudformation, stack = aws("cloudformation"), f"lookups-{unique}"
    cloudformation.create_stack(StackName=stack, TemplateBody=template(f"/lookups/{unique}/a"))
    cloudformation.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1})

    cloudformation.update_stack(StackName=stack, TemplateBody=template(f"/lookups/{unique}/b"))
    cloudformation.get_waiter("stack_update_complete").wait(StackName=stack, WaiterConfig={"Delay": 1})

    assert aws("ssm").get_parameter(Name=f"/lookups/{unique}/b")["Parameter"]["Value"] == "east"
    cloudformation.delete_stack(StackName=stack)
