"""Reusable CDK constructs, one per concern. Stacks in :mod:`infra.stacks` compose them."""
