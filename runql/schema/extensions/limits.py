"""Document limits: query depth, aliases, tokens and cost, checked before anything executes.

The validation rules are built once, when the schema is built, and every request adds the
*same* rule classes. That matters: strawberry's validation cache is keyed by the rule
classes, and its own limiter extensions passed as factories create new classes per request,
so every request re-validates. Here a repeated document is validated once per process
(see ``GraphQLLimits`` and the caches in ``runql.schema.build``).

Each error names the limit, the setting that controls it and carries
``extensions.code = LIMIT_EXCEEDED``; tokens are counted by graphql-core's parser
(``max_tokens``), which aborts early instead of building a huge AST.

The query cost (``runql.schema.extensions.cost``) depends on variables, which validation rules never
see (and the validation cache keys on the document alone), so it is checked when execution
starts: an over-cost request gets a request error and no resolver runs. Every limit is
listed in docs/limits.md.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import (
    ASTValidationRule,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from runql.error_codes import ErrorCode
from runql.schema.extensions.cost import find_operation, operation_cost
from runql.settings import Settings


def limit_error(what: str, actual: int, limit: int, setting: str, node: Node) -> GraphQLError:
    """A validation error naming the limit and the ``RUNQL_*`` variable that sets it."""
    variable = f"RUNQL_{setting.upper()}"
    return GraphQLError(
        f"{what} is {actual}, over the limit of {limit} ({variable})",
        node,
        extensions={
            "code": ErrorCode.LIMIT_EXCEEDED,
            "limit": limit,
            "actual": actual,
            "setting": variable,
        },
    )


def _is_introspection(node: FieldNode) -> bool:
    # Introspection subtrees are bounded by the token limit, not by depth: GraphiQL's own
    # introspection query is deeper than any sensible depth limit.
    return node.name.value.startswith("__")


@dataclass
class _Walker:
    """Depth and alias counts of an operation, expanding fragment spreads (memoised, with a
    guard against cycles: those are reported by graphql-core's own rules)."""

    fragments: dict[str, FragmentDefinitionNode]

    def __post_init__(self) -> None:
        self._depth: dict[str, int] = {}
        self._aliases: dict[str, int] = {}
        self._active: set[str] = set()

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if not _is_introspection(selection):
                    deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection.name.value, self._depth, True))
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += (selection.alias is not None) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, self._aliases, False)
        return total

    def _fragment(self, name: str, memo: dict[str, int], depth: bool) -> int:
        if name in memo:
            return memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return 0
        self._active.add(name)
        try:
            value = (self.depth if depth else self.aliases)(fragment.selection_set)
        finally:
            self._active.discard(name)
        memo[name] = value
        return value


def _operations(context: ValidationContext) -> Iterator[OperationDefinitionNode]:
    for definition in context.document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            yield definition


def _walker(context: ValidationContext) -> _Walker:
    fragments = {
        d.name.value: d
        for d in context.document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    return _Walker(fragments)


def depth_rule(max_depth: int) -> type[ASTValidationRule]:
    """Fields nested deeper than ``max_depth``; ``{ me { name } }`` has depth 2."""

    class QueryDepthLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            walker = _walker(context)
            for operation in _operations(context):
                depth = walker.depth(operation.selection_set)
                if depth > max_depth:
                    context.report_error(
                        limit_error("query depth", depth, max_depth, "max_query_depth", operation)
                    )

    return QueryDepthLimit


def alias_rule(max_aliases: int) -> type[ASTValidationRule]:
    """More than ``max_aliases`` aliased fields (fragments counted where spread): aliases
    are how one small document asks for the same expensive field many times."""

    class AliasLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            walker = _walker(context)
            for operation in _operations(context):
                count = walker.aliases(operation.selection_set)
                if count > max_aliases:
                    context.report_error(
                        limit_error(
                            "number of aliases", count, max_aliases, "max_aliases", operation
                        )
                    )

    return AliasLimit


def validation_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """The extra rules of this deployment, built once per schema."""
    rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth),
        alias_rule(settings.max_aliases),
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


def cost_check(settings: Settings) -> Callable[[ExecutionContext], GraphQLError | None]:
    """The query cost check of this deployment: the error of a request over
    ``max_query_cost``, or None. A document whose cost does not depend on its variables
    is estimated once (an LRU of ``graphql_cache_size`` documents)."""
    limit = settings.max_query_cost
    maxsize = settings.graphql_cache_size
    known: OrderedDict[tuple[str, str | None], int] = OrderedDict()

    def check(ctx: ExecutionContext) -> GraphQLError | None:
        document = ctx.graphql_document
        if document is None:
            return None
        operation = find_operation(document, ctx.operation_name)
        if operation is None:
            return None  # graphql-core refuses it with its own error
        key = (ctx.query, ctx.operation_name) if ctx.query is not None else None
        if key is not None and key in known:
            known.move_to_end(key)
            cost = known[key]
        else:
            estimate = operation_cost(ctx.schema._schema, document, operation, ctx.variables)
            cost = estimate.value
            if key is not None and estimate.static:
                known[key] = cost
                if len(known) > maxsize:
                    known.popitem(last=False)
        if cost <= limit:
            return None
        return limit_error("query cost", cost, limit, "max_query_cost", operation)

    return check


def limits_extension(settings: Settings) -> type[SchemaExtension]:
    """An extension *class* (strawberry instantiates it per request) that adds the rules
    built here once, sets the parser's token limit, and refuses a request over the query
    cost before anything executes (no resolver, no statement)."""
    rules = validation_rules(settings)
    max_tokens = settings.max_tokens
    over_cost = cost_check(settings)

    class GraphQLLimits(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            ctx = self.execution_context
            ctx.parse_options["max_tokens"] = max_tokens
            ctx.validation_rules = (*ctx.validation_rules, *rules)
            yield

        def on_execute(self) -> Iterator[None]:
            ctx = self.execution_context
            if ctx.result is None:  # not already refused (authentication)
                error = over_cost(ctx)
                if error is not None:
                    # strawberry skips execution when an extension set the result
                    ctx.result = ExecutionResult(data=None, errors=[error])
            yield

    return GraphQLLimits


__all__ = [
    "alias_rule",
    "cost_check",
    "depth_rule",
    "limit_error",
    "limits_extension",
    "validation_rules",
]
