"""Look-ahead over a field's selection set: which sub-fields a document asks for."""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from runql.schema.info import Info


def _names(selections: Iterable[Selection]) -> Iterable[str]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection.name
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            yield from _names(selection.selections)


def asks_for(info: Info, field: str) -> bool:
    """Whether the current field's selection names ``field`` (through fragments too).
    Directives are not evaluated: ``@skip``/``@include`` count as asked (a little extra
    work, never a missing value)."""
    return any(field in _names(selected.selections) for selected in info.selected_fields)
