"""Data flows one way: ``schema`` → ``resolvers`` → ``db``. This test keeps it so.

The rule, as DEVELOPERS.md states it:

* ``runql.db`` knows nothing of GraphQL or HTTP: it imports none of ``runql.resolvers``,
  ``runql.schema``, the app's entry points, strawberry, graphql or starlette.
* ``runql.resolvers`` imports no ``runql.schema`` and no strawberry (it may raise
  graphql-core's ``GraphQLError`` subclasses: its client errors are GraphQL errors).
* ``runql.schema`` reaches the database only through ``runql.resolvers``; of ``runql.db`` it
  may import the types it exposes: ``runql.db.enums`` and ``runql.db.models``.
* Modules at the top that import nothing of the layers (``runql.error_codes``, ``runql.metrics``,
  ``runql.settings``) may be imported by every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runql"
ENTRY_POINTS = ("runql.app", "runql.graphql_view", "runql.websocket", "runql.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from runql.db import runs`` counts as
    ``runql.db.runs``; ``from runql.db.runs import RunFilter`` as ``runql.db.runs``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if _is_module(submodule) else node.module)
    return found


def _is_module(name: str) -> bool:
    if not name.startswith("runql."):
        return False
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _layer(name: str) -> list[tuple[str, set[str]]]:
    return [
        (_module_name(path), _imports(path))
        for path in sorted((PACKAGE / name).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(layer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        f"{module} imports {imported}"
        for module, imported_names in _layer(layer)
        for imported in imported_names
        if _starts(imported, forbidden) and not _starts(imported, allowed)
    )


def test_db_knows_nothing_of_graphql_or_http() -> None:
    forbidden = (
        "runql.resolvers",
        "runql.schema",
        *ENTRY_POINTS,
        "strawberry",
        "graphql",
        "starlette",
    )
    assert _violations("db", forbidden) == []


def test_resolvers_do_not_reach_up_to_the_schema() -> None:
    forbidden = ("runql.schema", *ENTRY_POINTS, "strawberry", "starlette")
    assert _violations("resolvers", forbidden) == []


def test_schema_reaches_the_database_only_through_resolvers() -> None:
    allowed = ("runql.db.enums", "runql.db.models")
    assert _violations("schema", ("runql.db", *ENTRY_POINTS), allowed) == []


@pytest.mark.parametrize("module", ["error_codes.py", "settings.py", "metrics.py"])
def test_shared_top_level_modules_import_no_layer(module: str) -> None:
    imported = _imports(PACKAGE / module)
    layers = ("runql.db", "runql.resolvers", "runql.schema", *ENTRY_POINTS)
    assert sorted(name for name in imported if _starts(name, layers)) == []


def test_the_walk_sees_imports() -> None:
    """Guards the guard: the walk finds a known import, so an empty answer above means
    something."""
    db_imports = dict(_layer("db"))
    assert "sqlalchemy" in db_imports["runql.db.engine"]
    assert any(
        _starts(name, ("runql.db",)) for name in dict(_layer("resolvers"))["runql.resolvers.runs"]
    )


CLIENT_FORBIDDEN = (
    "runql.db",
    "runql.resolvers",
    "runql.schema",
    "runql.logging",
    *ENTRY_POINTS,
    "strawberry",
    "starlette",
    "sqlalchemy",
)


def test_the_runner_is_a_client_of_the_api() -> None:
    """``runql runner`` knows the server only over HTTP: none of its modules imports the
    database, resolvers, schema or the server's entry points."""
    assert _layer("runner"), "the walk found no runner modules"
    assert _violations("runner", CLIENT_FORBIDDEN) == []


def test_ps_and_stop_are_clients_of_the_api() -> None:
    imported = _imports(PACKAGE / "client_commands.py")
    assert "runql.runner.client" in imported
    assert sorted(name for name in imported if _starts(name, CLIENT_FORBIDDEN)) == []
