"""Long lists of ids and composite keys, bound as a fixed number of parameters.

Loaders batch every key a request asks for, and nothing but the request body bounds how
many that is: a federation ``_entities`` call can carry tens of thousands of
representations, and ``Job.submissions`` over a page of 100 runs of up to 5,000 jobs asks
for 500,000 logical jobs. The obvious SQL breaks long before that:

* an expanding ``IN`` renders one bind parameter per value, and asyncpg allows at most
  32,767 per statement (SQLite builds allow 32,766 or 250,000);
* a row-value ``(run_id, replica_num, job_num) IN ((...), ...)`` list costs PostgreSQL
  time quadratic in its length and past about 12,000 keys fails with "stack depth limit
  exceeded".

Here a whole list is one parameter per column, so the statement text and its parameter
count are fixed and the cost is linear in the number of keys: on PostgreSQL an array
(``column = ANY(:ids)``; ``unnest(:a, :b, :c)`` joined for composite keys), on SQLite JSON
text read back by ``json_each``. Measured on the latest-2-submissions query (PostgreSQL 15,
SQLite 3.40, statement only):

======== ============================ ================== ==================
keys     PostgreSQL tuple ``IN`` list PostgreSQL unnest   SQLite json_each
======== ============================ ================== ==================
1,000    0.26 s                       0.02 s             0.01 s
5,000    7.4 s                        0.2 s              0.04 s
7,000    17.9 s                       0.2 s              --
12,000   stack depth limit exceeded   0.4 s              0.09 s
100,000  --                           0.9 s              0.6 s (80,000)
500,000  --                           6.1 s              5.4 s
======== ============================ ================== ==================

For short lists (a page of 50 runs, 200 keys) the shapes cost the same or less than the
``IN`` lists they replace. Callers pass plain Python lists as parameter values on both
backends; the bind types below convert them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import TypeDecorator, TypeEngine


class JSONList(TypeDecorator[Any]):
    """A Python list bound as JSON text (SQLite's side of a list parameter)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(list(value), separators=(",", ":"))


def _list_param(name: str | None, dialect: str, item_type: TypeEngine[Any], value: Any) -> Any:
    """A bind parameter holding a whole list; ``value`` only for one-off statements."""
    list_type: TypeEngine[Any] = ARRAY(item_type) if dialect == "postgresql" else JSONList()
    if value is None:
        assert name is not None
        return bindparam(name, type_=list_type)
    return bindparam(name, value=list(value), type_=list_type)


def in_list(
    column: Any,
    dialect: str,
    *,
    name: str | None = None,
    values: Sequence[Any] | None = None,
    item_type: TypeEngine[Any] | None = None,
) -> ColumnElement[bool]:
    """``column IN <list>`` with the list in one parameter: named ``name`` (supply the
    list at execution) or bound to ``values`` now.

    PostgreSQL plans ``= ANY(array)`` exactly like an ``IN`` list (index or bitmap scan);
    SQLite probes ``column`` for each value of ``json_each`` as it would for an ``IN`` list.
    """
    item = item_type if item_type is not None else Integer()
    param = _list_param(name, dialect, item, values)
    if dialect == "postgresql":
        return column == any_(param)
    listed = func.json_each(param).table_valued("value")
    return column.in_(select(listed.c.value))


def key_table(name: str, dialect: str, columns: Sequence[str]) -> FromClause:
    """The rows of a list of integer tuples, as a FROM item with ``columns``: join it to
    the table the keys address (the keys drive the join, one index probe each).

    Bind it with :func:`key_params`. Rows are not deduplicated: pass distinct keys.
    """
    if dialect == "postgresql":
        arrays = [bindparam(f"{name}_{column}", type_=ARRAY(Integer)) for column in columns]
        return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)
    rows = func.json_each(bindparam(name, type_=JSONList())).table_valued("value")
    return select(
        *(
            func.json_extract(rows.c.value, literal_column(f"'$[{i}]'")).label(c)
            for i, c in enumerate(columns)
        )
    ).subquery(name)


def key_params(
    name: str, dialect: str, columns: Sequence[str], keys: Sequence[Sequence[int]]
) -> dict[str, Any]:
    """The parameters of :func:`key_table` for ``keys`` (tuples in ``columns`` order)."""
    if dialect == "postgresql":
        return {f"{name}_{column}": [key[i] for key in keys] for i, column in enumerate(columns)}
    return {name: [list(key) for key in keys]}
