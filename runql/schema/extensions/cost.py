"""Query cost: how many objects a document may ask for, estimated before execution.

Depth, alias and token limits bound the *shape* of a document, not what it fetches:
``runs { edges { node { jobs(submissionsLimit: 100) { submissions(first: 100) { spec } } } } }``
is small and shallow, and answers megabytes. Like GitHub's node limit, the cost is read
from the document and its arguments (variables included) before anything runs:

    cost = sum, over every field that returns an object, of the product of the list
           sizes of that field and of the list fields above it

A list field's size comes from its arguments (``SIZES``): the page size of ``runs`` and
``projects`` (their default when absent), ``Job.submissions(first)``,
``Run.jobs(submissionsLimit)`` times an assumed number of logical jobs per run (``jobs`` is
not paginated), the lengths of bulk mutations' input lists. Scalars cost nothing;
introspection (``__schema``, ``__type``, ``__typename``) is not counted. Fragments count
where they are spread; fields of every type condition count (an upper bound); repeated
fields count as written. See docs/limits.md.

Pure functions of graphql-core's schema and AST: no strawberry, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    is_composite_type,
    value_from_ast_untyped,
)

from runql.resolvers.projects import DEFAULT_PAGE_SIZE as PROJECTS_PAGE_SIZE
from runql.resolvers.runs import DEFAULT_PAGE_SIZE as RUNS_PAGE_SIZE

#: ``Run.jobs`` is not paginated: its size is ``submissionsLimit`` times this many logical
#: jobs (replica, job) per run, a typical pipeline (the benchmarks seed 4). Bigger runs
#: cost more than estimated; ``max_jobs_per_run`` bounds them.
ASSUMED_LOGICAL_JOBS_PER_RUN = 10

#: The size of a list of objects no rule in ``SIZES`` covers (a test keeps that set empty).
DEFAULT_LIST_SIZE = 100


class Arguments:
    """A field's argument values as the client wrote them (variables substituted, the
    schema's defaults for absent ones), read only when a size needs them."""

    def __init__(self, field: GraphQLField, node: FieldNode, estimator: _Estimator) -> None:
        self._field = field
        self._nodes = {arg.name.value: arg.value for arg in node.arguments or ()}
        self._estimator = estimator

    def get(self, name: str) -> Any:
        value_node = self._nodes.get(name)
        if value_node is not None:
            value = self._estimator.value(value_node)
            return None if value is Undefined else value
        argument = self._field.args.get(name)
        if argument is None or argument.default_value is Undefined:
            return None
        return argument.default_value


def _int(value: Any) -> int | None:
    """An ``Int`` as sent; anything else is left to execution to refuse."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return None


def _count(value: Any) -> int:
    """Items of an input list; a single value counts one (GraphQL's list coercion)."""
    if value is None or value is Undefined:
        return 0
    return len(value) if isinstance(value, list) else 1


def _member(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class Size:
    """What a field's arguments say about list sizes: ``own`` for the field itself (a
    list), ``children`` for list fields of the object it returns (a connection's
    ``edges``, a payload's ``results``), ``jobs_per_run`` for ``Run.jobs`` below it."""

    own: int | None = None
    children: Mapping[str, int] = field(default_factory=dict)
    jobs_per_run: int | None = None


def _page(default: int) -> Callable[[Arguments, int], Size]:
    def size(args: Arguments, jobs_per_run: int) -> Size:
        given = [n for n in (_int(args.get("first")), _int(args.get("last"))) if n is not None]
        return Size(children={"edges": max(given) if given else default})

    return size


def _run_jobs(args: Arguments, jobs_per_run: int) -> Size:
    limit = _int(args.get("submissionsLimit"))
    return Size(own=(1 if limit is None else limit) * jobs_per_run)


def _submissions(args: Arguments, jobs_per_run: int) -> Size:
    first = _int(args.get("first"))
    return Size(own=DEFAULT_LIST_SIZE if first is None else first)


def _entities(args: Arguments, jobs_per_run: int) -> Size:
    return Size(own=_count(args.get("representations")))


def _submit_run(args: Arguments, jobs_per_run: int) -> Size:
    """The new run's logical jobs are known: the replicas of its jobs."""
    jobs = _member(args.get("input"), "jobs")
    items = jobs if isinstance(jobs, list) else [jobs] if jobs is not None else []
    total = 0
    for job in items:
        replicas = _int(_member(job, "replicas"))
        total += 1 if replicas is None else replicas
    return Size(jobs_per_run=total)


def _claim_jobs(args: Arguments, jobs_per_run: int) -> Size:
    limit = _int(_member(args.get("input"), "limit"))
    return Size(children={"claims": DEFAULT_LIST_SIZE if limit is None else limit})


def _input_list(*names: str) -> Callable[[Arguments, int], Size]:
    """A bulk mutation: one result per item of the input's lists."""

    def size(args: Arguments, jobs_per_run: int) -> Size:
        value = args.get("input")
        return Size(children={"results": sum(_count(_member(value, n)) for n in names)})

    return size


#: (type, field) → the list sizes its arguments imply. Every field returning a list of
#: objects is covered, by its own rule or by its parent's ``children``.
SIZES: dict[tuple[str, str], Callable[[Arguments, int], Size]] = {
    ("Query", "runs"): _page(RUNS_PAGE_SIZE),
    ("Query", "projects"): _page(PROJECTS_PAGE_SIZE),
    ("Query", "_entities"): _entities,
    ("Run", "jobs"): _run_jobs,
    ("Job", "submissions"): _submissions,
    ("Mutation", "submitRun"): _submit_run,
    ("Mutation", "stopRuns"): _input_list("runIds", "names"),
    ("Mutation", "deleteRuns"): _input_list("runIds"),
    ("Mutation", "restartRuns"): _input_list("runIds", "names"),
    ("Mutation", "claimJobs"): _claim_jobs,
    ("Mutation", "renewLeases"): _input_list("leases"),
    ("Mutation", "completeJobs"): _input_list("completions"),
}


def _is_list(field: GraphQLField) -> bool:
    type_ = field.type
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


@dataclass
class _Estimator:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    #: Whether a size was read from a variable (the cost then depends on the request).
    read_variables: bool = False

    def __post_init__(self) -> None:
        self._memo: dict[tuple[str, tuple[tuple[str, int], ...], int], int] = {}
        self._active: set[str] = set()

    def value(self, node: Any) -> Any:
        if not self.read_variables and _mentions_variable(node):
            self.read_variables = True
        return value_from_ast_untyped(node, self.variables)

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        sizes: Mapping[str, int],
        jobs_per_run: int,
    ) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, sizes, jobs_per_run)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                type_ = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, type_, sizes, jobs_per_run)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, sizes, jobs_per_run)
        return total

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType,
        sizes: Mapping[str, int],
        jobs_per_run: int,
    ) -> int:
        name = node.name.value
        fields = getattr(parent, "fields", None)
        if name.startswith("__") or not fields or name not in fields:
            return 0  # introspection, or an unknown field (validation reports those)
        definition: GraphQLField = fields[name]
        returns = get_named_type(definition.type)
        if not is_composite_type(returns):
            return 0
        rule = SIZES.get((parent.name, name))
        size = rule(Arguments(definition, node, self), jobs_per_run) if rule else Size()
        multiplier = 1
        if _is_list(definition):
            own = sizes.get(name, size.own)
            multiplier = DEFAULT_LIST_SIZE if own is None else own
        below = size.jobs_per_run if size.jobs_per_run is not None else jobs_per_run
        children = self.selections(node.selection_set, returns, size.children, below)
        return multiplier * (1 + children)

    def _spread(self, name: str, sizes: Mapping[str, int], jobs_per_run: int) -> int:
        key = (name, tuple(sorted(sizes.items())), jobs_per_run)
        if key in self._memo:
            return self._memo[key]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return 0  # unknown or cyclic: graphql-core's validation reports those
        self._active.add(name)
        try:
            type_ = self.schema.get_type(fragment.type_condition.name.value)
            cost = self.selections(fragment.selection_set, type_, sizes, jobs_per_run)
        finally:
            self._active.discard(name)
        self._memo[key] = cost
        return cost


def _mentions_variable(node: Any) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ListValueNode):
        return any(_mentions_variable(item) for item in node.values or ())
    if isinstance(node, ObjectValueNode):
        return any(_mentions_variable(item.value) for item in node.fields or ())
    return False


@dataclass(frozen=True)
class Cost:
    value: int
    #: False when a size came from a variable: another request may cost differently.
    static: bool


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
) -> Cost:
    """The estimated cost of ``operation`` of ``document`` with these (raw) variables."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            values[definition.variable.name.value] = value_from_ast_untyped(
                definition.default_value
            )
    values.update(variables or {})
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    estimator = _Estimator(schema, fragments, values)
    root = schema.get_root_type(operation.operation)
    value = estimator.selections(operation.selection_set, root, {}, ASSUMED_LOGICAL_JOBS_PER_RUN)
    return Cost(value, static=not estimator.read_variables)


def find_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation graphql-core will execute, or None when it will refuse to."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    for operation in operations:
        if operation.name is not None and operation.name.value == name:
            return operation
    return None


__all__ = [
    "ASSUMED_LOGICAL_JOBS_PER_RUN",
    "DEFAULT_LIST_SIZE",
    "SIZES",
    "Cost",
    "Size",
    "find_operation",
    "operation_cost",
]
