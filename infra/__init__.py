"""The CDK app of mlops-kit: stage configuration, stacks (deployable units) and constructs (concerns)."""
