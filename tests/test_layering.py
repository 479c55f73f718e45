"""The house plan as one table: what each folder of ``runql/`` may import.

Data flows one way: ``schema`` → ``resolvers`` → ``db``. Around that core:

* ``db`` knows nothing of GraphQL or HTTP;
* ``resolvers`` never reach up to the schema (their client errors are graphql-core's
  ``GraphQLError`` subclasses, so ``graphql`` is allowed, strawberry is not);
* ``schema`` reaches the database only through ``resolvers``; of ``db`` it may import the
  types it exposes, ``db.enums`` and ``db.models``;
* ``tasks`` (background work of a server) and ``observe`` (logs, metrics, traces) sit beside
  ``db``; ``web`` (the entry points of a server) may use every server layer; ``cli`` may use
  everything;
* ``clients`` (the runner, ``ps``, ``stop``) know the server only over HTTP: of runql, they
  import themselves and the error codes;
* ``settings`` and ``error_codes`` import no layer, so every layer may use them.

A module whose folder has no row fails the test: a new folder gets a row, and a reader
sees where it sits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runql"

SHARED = ("runql.settings", "runql.error_codes")
SERVER = (*SHARED, "runql.db", "runql.observe", "runql.tasks", "runql.resolvers", "runql.schema")
GRAPHQL = ("strawberry", "graphql")
HTTP = ("starlette", "uvicorn", "httpx", "websockets")
EXPOSED_MODELS = ("runql.db.enums", "runql.db.models")  # the types the schema exposes

#: folder -> (runql modules it may import, outside packages it may not import)
ALLOWED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "runql.settings": ((), ("runql",)),
    "runql.error_codes": ((), ("runql",)),
    "runql.db": ((*SHARED, "runql.db", "runql.observe.metrics"), (*GRAPHQL, *HTTP)),
    "runql.observe": ((*SHARED, "runql.observe", "runql.db.engine"), GRAPHQL),
    "runql.tasks": ((*SHARED, "runql.tasks", "runql.db", "runql.observe"), (*GRAPHQL, *HTTP)),
    "runql.resolvers": (
        (*SHARED, "runql.resolvers", "runql.db", "runql.observe", "runql.tasks"),
        ("strawberry", *HTTP),
    ),
    "runql.schema": (
        (*SHARED, "runql.schema", "runql.resolvers", "runql.observe", *EXPOSED_MODELS),
        HTTP,
    ),
    "runql.web": ((*SERVER, "runql.web"), ()),
    "runql.cli": ((*SERVER, "runql.web", "runql.cli", "runql.clients"), ()),
    "runql.clients": (
        ("runql.error_codes", "runql.clients"),
        (*GRAPHQL, "starlette", "uvicorn", "sqlalchemy", "asyncpg", "aiosqlite"),
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    if not name.startswith("runql."):
        return False
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


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


def _starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _modules() -> list[tuple[str, Path]]:
    return [
        (_module_name(path), path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _row(module: str) -> str | None:
    return next((row for row in ALLOWED if _starts(module, (row,))), None)


def test_every_module_sits_in_a_row_of_the_table() -> None:
    homeless = [m for m, _ in _modules() if m != "runql" and _row(m) is None]
    assert homeless == [], "add a row to ALLOWED for these modules' folder"


@pytest.mark.parametrize("row", sorted(ALLOWED))
def test_each_folder_imports_only_what_its_row_allows(row: str) -> None:
    allowed, forbidden = ALLOWED[row]
    violations = sorted(
        f"{module} imports {imported}"
        for module, path in _modules()
        if _row(module) == row
        for imported in _imports(path)
        if (imported.startswith("runql") and not _starts(imported, (*allowed, row)))
        or _starts(imported, forbidden)
    )
    assert violations == []


def test_the_root_holds_only_the_shared_modules() -> None:
    """Everything else lives in a folder named for its role."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "error_codes.py", "settings.py"]


def test_the_walk_sees_imports() -> None:
    """Guards the guard: the walk finds known imports, so an empty answer above means
    something."""
    imports = {m: _imports(p) for m, p in _modules()}
    assert "sqlalchemy" in imports["runql.db.engine"]
    assert any(_starts(n, ("runql.db",)) for n in imports["runql.resolvers.runs"])
    assert "runql.clients.api" in imports["runql.clients.commands"]
    assert _row("runql.schema.extensions.limits") == "runql.schema"
    assert _row("runql.clients.runner.loop") == "runql.clients"


def test_the_table_refuses_an_upward_import() -> None:
    """A db module importing the schema would be reported."""
    allowed, forbidden = ALLOWED["runql.db"]
    assert not _starts("runql.schema.types", allowed)
    assert _starts("strawberry", forbidden)
