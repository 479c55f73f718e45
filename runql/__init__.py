"""runql: the GraphQL API service of a workload orchestrator."""

__version__ = "0.1.0"
