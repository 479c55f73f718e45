"""The web UI's GraphQL operations, read from ``operations/*.graphql``.

The UI sends only these documents (the page carries them; the JavaScript has no GraphQL
text of its own), so they are one list a reviewer reads, the test suite validates against
the schema (tests/ui/test_operations.py), and a trusted-documents manifest can start from.
Each file holds one operation; the fragments it spreads are appended from
``fragments.graphql``, so a document is complete on its own.
"""

from __future__ import annotations

import functools
from pathlib import Path

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

OPERATIONS_DIR = Path(__file__).parent / "operations"
FRAGMENTS_FILE = "fragments.graphql"


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.names.add(node.name.value)


def _spreads(node: object) -> set[str]:
    visitor = _Spreads()
    visit(node, visitor)  # type: ignore[arg-type]
    return visitor.names


@functools.cache
def _fragments() -> dict[str, FragmentDefinitionNode]:
    document = parse((OPERATIONS_DIR / FRAGMENTS_FILE).read_text(encoding="utf-8"))
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _complete(operation: OperationDefinitionNode) -> str:
    """The operation followed by every fragment it spreads, directly or through another."""
    fragments = _fragments()
    needed: list[str] = []
    todo = sorted(_spreads(operation))
    while todo:
        name = todo.pop(0)
        if name in needed:
            continue
        needed.append(name)
        todo.extend(sorted(_spreads(fragments[name]) - set(needed)))
    parts = [print_ast(operation), *(print_ast(fragments[name]) for name in needed)]
    return "\n\n".join(parts) + "\n"


@functools.cache
def all_operations() -> dict[str, str]:
    """Every operation file's complete document, by operation name."""
    operations: dict[str, str] = {}
    for path in sorted(OPERATIONS_DIR.glob("*.graphql")):
        if path.name == FRAGMENTS_FILE:
            continue
        document: DocumentNode = parse(path.read_text(encoding="utf-8"))
        [operation] = document.definitions  # one operation per file, by convention
        assert isinstance(operation, OperationDefinitionNode) and operation.name, path
        operations[operation.name.value] = _complete(operation)
    return operations
