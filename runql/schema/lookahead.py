"""Look-ahead over a field's selection set: what the document will ask for.

:func:`asks_for` tells whether a sub-field is selected (``RunConnection.eventCursor``
costs a statement only when asked for).

``Query.runs`` passes :func:`runs_page_needs` to its resolver, which then loads the
latest submissions (and what ``statusMessage`` needs) together with the page and primes
the loaders; each row's field then resolves from memory. Reading the selection is a hint,
never a rule: a shape the look-ahead does not recognise (an argument it cannot read, a
``@skip``/``@include`` it cannot decide) is simply not prefetched, and the row's resolver
loads it through its DataLoader as it would without the look-ahead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from runql.db.enums import JobStatus
from runql.resolvers.runs import PageNeeds, jobs_key
from runql.schema.info import Info

_DEFAULT_SUBMISSIONS_LIMIT = 1


def runs_page_needs(info: Info) -> PageNeeds:
    """The per-run data the ``edges { node { ... } }`` of this ``runs`` field select."""
    latest_jobs: set[tuple[int, tuple[JobStatus, ...]]] = set()
    status_message = False
    runs_fields = [f for f in info.selected_fields if isinstance(f, SelectedField)]
    for edges in (e for runs in runs_fields for e in _fields(runs.selections, "edges")):
        for node in _fields(edges.selections, "node"):
            for run_field in _fields(node.selections, "jobs", "statusMessage"):
                if run_field.name == "statusMessage":
                    status_message = True
                    continue
                key = _jobs_key(run_field.arguments)
                if key is not None:
                    latest_jobs.add(key)
    return PageNeeds(latest_jobs=frozenset(latest_jobs), status_message=status_message)


def asks_for(info: Info, field: str) -> bool:
    """Whether the current field's selection names ``field`` (through fragments, unless
    ``@skip``/``@include`` surely drop it)."""
    return any(
        True
        for selected in info.selected_fields
        if isinstance(selected, SelectedField)
        for _ in _fields(selected.selections, field)
    )


def asks_for_path(info: Info, *path: str) -> bool:
    """Whether the current field's selection reaches ``path``, field by field (e.g.
    ``"claims", "job", "spec"``), through fragments, unless ``@skip``/``@include`` surely
    drop a step."""
    level = [selected for selected in info.selected_fields if isinstance(selected, SelectedField)]
    for name in path:
        level = [found for selected in level for found in _fields(selected.selections, name)]
        if not level:
            return False
    return True


def asks_only_for(info: Info, names: frozenset[str]) -> bool:
    """Whether the current field's selection names nothing but ``names`` (through
    fragments): ``run { id }`` can be answered without reading the run."""

    def within(selections: Sequence[Selection]) -> bool:
        for selection in selections:
            if isinstance(selection, SelectedField):
                fits = selection.name in names
            elif isinstance(selection, (FragmentSpread, InlineFragment)):
                fits = within(selection.selections)
            else:
                fits = False
            if not fits:
                return False
        return True

    return all(
        within(selected.selections)
        for selected in info.selected_fields
        if isinstance(selected, SelectedField)
    )


def _fields(selections: Sequence[Selection], *names: str) -> Iterator[SelectedField]:
    """The selected fields named ``names``, through fragments, minus those skipped."""
    for selection in selections:
        if not _included(selection.directives):
            continue
        if isinstance(selection, SelectedField):
            if selection.name in names:
                yield selection
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            yield from _fields(selection.selections, *names)


def _included(directives: dict[str, dict[str, Any]]) -> bool:
    """False only when ``@skip``/``@include`` surely drop the selection."""
    return directives.get("skip", {}).get("if") is not True and (
        directives.get("include", {}).get("if") is not False
    )


def _jobs_key(arguments: dict[str, Any]) -> tuple[int, tuple[JobStatus, ...]] | None:
    """``Run.jobs``' loader key shape, or None when an argument is not a plain value
    (the field itself checks its arguments and reports what is wrong)."""
    limit = arguments.get("submissionsLimit", _DEFAULT_SUBMISSIONS_LIMIT)
    raw_statuses = arguments.get("statuses")
    if not isinstance(limit, (int, str)) or isinstance(limit, bool):
        return None
    try:
        statuses = (
            None
            if raw_statuses is None
            else [JobStatus(getattr(s, "value", s)) for s in _as_list(raw_statuses)]
        )
        return jobs_key(int(limit), statuses)
    except (TypeError, ValueError):
        return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]  # a list argument given one item
