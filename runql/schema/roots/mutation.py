"""The root Mutation type: merged from one mutation class per use-case group, so each
group (lifecycle, runner) keeps its fields in its own module."""

from __future__ import annotations

from typing import Any

from strawberry.tools import merge_types

from runql.schema.lifecycle import LifecycleMutation
from runql.schema.runner import RunnerMutation

#: One strawberry type per group; add yours here.
MUTATION_GROUPS: tuple[type, ...] = (LifecycleMutation, RunnerMutation)


def build_mutation() -> Any:
    """The merged ``Mutation`` type, or None while no group defines mutations."""
    if not MUTATION_GROUPS:
        return None
    mutation = merge_types("Mutation", MUTATION_GROUPS)
    mutation.__strawberry_definition__.description = "Change the orchestrator's state."  # type: ignore[attr-defined]
    return mutation
