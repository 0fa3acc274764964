"""One CDK stack per deployable unit; each composes constructs from :mod:`infra.constructs`."""
