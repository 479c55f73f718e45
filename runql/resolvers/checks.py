"""Checks of request values, before anything reads or writes the database.

One module, so every entry point applies the same rules and names the field the same way
(``jobs[2].name``, ``completions[0].result.a.b``). Each check returns the value to use or
raises a ``ClientError`` (``BAD_USER_INPUT`` or ``LIMIT_EXCEEDED``) naming the field.

Text: GraphQL strings are Unicode, but neither database stores every Python ``str``:
PostgreSQL refuses NUL (U+0000) in ``text`` and ``jsonb``, and a lone surrogate
(``"\\ud800"``, which JSON's ``\\ud800`` escape produces) cannot be encoded as UTF-8 at
all. SQLite would store the first and fail on the second. So a value that will be stored
or compared in SQL is refused when it holds either, identically on both backends. Free text
that a runner captured from a process (a completion's ``message``) is the one exception:
it is kept, with such characters replaced by U+FFFD (see :func:`clean_message`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from runql.resolvers.errors import BadInput, LimitExceeded

#: Column widths of ``runs.name`` and ``jobs.name``.
MAX_NAME_LENGTH = 128
REPLACEMENT = "\ufffd"

_MAX_ID = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_BLANKS = " \t\r\n"
# NUL, or a surrogate code point (only lone ones reach Python: pairs are decoded by JSON).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    position = found.start()
    if found.group() == "\x00":
        return f"must not contain the NUL character (U+0000, at index {position})"
    return f"must be valid Unicode: lone surrogate U+{ord(found.group()):04X} at index {position}"


def check_text(value: str, field: str) -> str:
    """A string that will be stored or compared in SQL: no NUL, no lone surrogate."""
    problem = _unstorable(value)
    if problem is not None:
        raise BadInput(field, problem)
    return value


def check_name(value: str, field: str) -> str:
    """A run, job or runner name: non-empty, no surrounding blanks, storable, fits its
    column."""
    if not value.strip():
        raise BadInput(field, "must not be empty")
    if value != value.strip():
        raise BadInput(field, "must not start or end with whitespace")
    if len(value) > MAX_NAME_LENGTH:
        raise LimitExceeded(field, MAX_NAME_LENGTH, len(value))
    return check_text(value, field)


def clean_message(value: str | None) -> str | None:
    """A runner's free-text message (often a captured stderr tail) as it can be stored:
    characters no database can store as text become U+FFFD. (The database layer cuts it
    to the column's width.)"""
    if value is None or _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def parse_id(value: str, field: str) -> int | None:
    """The integer behind a GraphQL ``ID``: ASCII digits only (``"²"`` and ``"\\u0661"`` are
    digits to ``str.isdigit`` but are not ids). Malformed ids are bad input; ids beyond
    the 64-bit range match nothing (None), so ``run(id:)`` answers null as for any
    unknown id."""
    text = value.strip(_ASCII_BLANKS)
    if _ASCII_DIGITS.fullmatch(text) is None:
        shown = value if _unstorable(value) is None else value.encode("utf-8", "backslashreplace")
        raise BadInput(field, f"not a valid ID: {shown!r} (IDs are decimal ASCII digits)")
    number = int(text)
    return number if number <= _MAX_ID else None


def check_time(value: dt.datetime | None, field: str) -> dt.datetime | None:
    """A point in time as UTC (no offset: taken as UTC). Offsets that push it outside the
    years 1 to 9999 (``0001-01-01T00:00:00+05:00``) are bad input, not an overflow."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise BadInput(
            field, "out of range: the time in UTC must fall in years 1 to 9999"
        ) from None


def check_json_object(value: Any, field: str, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """A heavy JSON document (``spec``, ``result``): an object (null counts as ``{}``), at
    most ``max_depth`` levels deep (``{}`` is 1, ``{"a": []}`` is 2), every key and string
    storable, every number finite, and at most ``max_bytes`` encoded.

    The walk is iterative and stops at the first level beyond the limit, so a document
    nested thousands of levels deep costs no recursion and is refused with its path.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(field, f"must be a JSON object, got {type(value).__name__}")
    pending: list[tuple[Any, str, int]] = [(value, field, 1)]
    while pending:
        node, path, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise LimitExceeded(f"{path} (JSON depth)", max_depth, depth)
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str):
                    problem = _unstorable(key)
                    if problem is not None:
                        raise BadInput(f"{path} (a key)", problem)
                    child_path = f"{path}.{key}"
                else:
                    child_path = f"{path}[{key}]"
                pending.append((child, child_path, depth + 1))
        elif isinstance(node, str):
            problem = _unstorable(node)
            if problem is not None:
                raise BadInput(path, problem)
        elif isinstance(node, float) and not math.isfinite(node):
            raise BadInput(path, f"JSON has no {node!r}: numbers must be finite")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise LimitExceeded(f"{field} (bytes)", max_bytes, size)
    return value


def check_batch(field: str, size: int, limit: int) -> None:
    """A list argument of a bulk call within its configured size."""
    if size > limit:
        raise LimitExceeded(field, limit, size)
