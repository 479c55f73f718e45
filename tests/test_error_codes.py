"""Each error code is declared once (``runql.error_codes``) and documented from there."""

from __future__ import annotations

import ast
from pathlib import Path

from runql.error_codes import ITEM_CODES, MEANINGS, ErrorCode, error_codes_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "errors.md"


def test_every_code_has_a_meaning() -> None:
    assert set(MEANINGS) == set(ErrorCode)
    for code, meaning in MEANINGS.items():
        assert meaning.text.strip(), code
        assert {w.strip() for w in meaning.where.split(",")} <= {"request", "item", "http"}, code


def test_docs_list_every_code_as_declared() -> None:
    assert error_codes_table() in DOCS.read_text(), (
        "docs/errors.md is out of date: paste "
        "`python -c 'from runql.error_codes import error_codes_table; "
        "print(error_codes_table())'`"
    )


def test_refusals_of_bulk_calls_are_item_codes() -> None:
    assert {ErrorCode.STALE_CLAIM, ErrorCode.INVALID_STATE, ErrorCode.NOT_FINISHED} <= set(
        ITEM_CODES
    )
    assert ErrorCode.INTERNAL_SERVER_ERROR not in ITEM_CODES


def _code_literals(path: Path) -> list[tuple[int, str]]:
    codes = {code.value for code in ErrorCode}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and node.value in codes:
            found.append((node.lineno, node.value))
    return found


def test_no_module_spells_a_code_as_a_string() -> None:
    """Codes are named through ``ErrorCode`` everywhere else, so a code cannot drift
    between the layer that decides it and the one that shows it."""
    home = ROOT / "runql" / "error_codes.py"
    spelled = {
        f"{path.relative_to(ROOT)}:{line}: {value}"
        for path in sorted((ROOT / "runql").rglob("*.py"))
        if path != home and "migrations" not in path.parts
        for line, value in _code_literals(path)
    }
    assert not spelled, "use runql.error_codes.ErrorCode instead:\n" + "\n".join(sorted(spelled))
