"""Authentication at the schema boundary.

A request without a valid token gets exactly one error, code ``UNAUTHENTICATED``, and no
data, whatever fields it asked for. Introspection-only documents (``__schema``,
``__type``, ``__typename``, federation's ``_service``) stay open so GraphiQL's docs pane
and a gateway's composition work before a token is pasted.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from runql.resolvers.errors import Unauthenticated

PUBLIC_ROOT_FIELDS = frozenset({"__schema", "__type", "__typename", "_service"})


def _is_public(operation: OperationDefinitionNode | None) -> bool:
    if operation is None:
        return False
    selections = operation.selection_set.selections
    return all(
        isinstance(node, FieldNode) and node.name.value in PUBLIC_ROOT_FIELDS for node in selections
    )


class RequireViewer(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        context = ctx.context
        if getattr(context, "viewer_or_none", None) is None and not _is_public(_operation(ctx)):
            ctx.result = ExecutionResult(data=None, errors=[Unauthenticated()])
        yield


def _operation(ctx: object) -> OperationDefinitionNode | None:
    document = getattr(ctx, "graphql_document", None)
    if document is None:
        return None
    name = getattr(ctx, "operation_name", None)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if name is None or (operation.name and operation.name.value == name):
            return operation
    return None
