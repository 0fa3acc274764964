"""CloudFormation resource providers for the types community LocalStack silently skips.

Without them a stack reports CREATE_COMPLETE with physical id ``unknown`` for these resources. Each
provider calls the real API (the kit's providers or LocalStack's) through ``request.aws_client_factory``.
"""
