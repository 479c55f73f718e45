"""One shape for every bulk mutation: per-item checks, one batch write, answers in request
order. ``stopRuns``, ``deleteRuns``, ``renewLeases`` and ``completeJobs`` are each this
function with their own four parts; a new bulk mutation should be too.

The contract of :func:`answer_each`:

1. **Each item is checked on its own** (``check``, given the item and its label, e.g.
   ``runIds[2]``). An item that fails its check (``check`` raises a ``ClientError``) is
   answered with that error as data (an ``ItemError`` naming the item) and holds back no
   other item. An item that can be answered without the database (an id beyond the 64-bit
   range matches nothing) is returned wrapped in :class:`Answered`.
2. **The good items go in ONE batch write** (``write``): all of them, in request order,
   repeats included (``write`` decides what a repeat means: the same run stopped once, a
   completion answered again), in one short write transaction that ``write`` opens. It
   returns one outcome per item it was given, in the same order. With no good item it is
   not called, and nothing is written.
3. **The answers come in the order of the request**, one per item: ``answer`` for an item
   that was written (or :class:`Answered`), ``refuse`` for one that failed its check.

A request that is wrong as a whole (too many items, a bad lease length) is a top-level
error the caller raises before calling this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from runql.resolvers.errors import ClientError, ItemError

Item = TypeVar("Item")  # a request item as the client sent it
Checked = TypeVar("Checked")  # what ``check`` makes of a good item, for the write
Outcome = TypeVar("Outcome")  # what the write (or ``Answered``) says of one item
Answer = TypeVar("Answer")  # one entry of the payload's ``results``


@dataclass(frozen=True)
class Answered(Generic[Outcome]):
    """What ``check`` returns for an item it can answer without the write."""

    outcome: Outcome


async def answer_each(
    field: str,
    items: Sequence[Item],
    *,
    check: Callable[[Item, str], Checked | Answered[Outcome]],
    write: Callable[[list[Checked]], Awaitable[Sequence[Outcome]]],
    answer: Callable[[Item, str, Outcome], Answer],
    refuse: Callable[[Item, ItemError], Answer],
) -> list[Answer]:
    """Check each of ``items`` (the request's list argument ``field``), write the good ones
    in one batch, and answer every item in request order (the module docstring has the
    contract)."""
    checked: list[Checked | Answered[Outcome] | ItemError] = []
    for i, item in enumerate(items):
        try:
            checked.append(check(item, f"{field}[{i}]"))
        except ClientError as exc:
            checked.append(ItemError.of(exc))
    batch = [c for c in checked if not isinstance(c, Answered | ItemError)]
    outcomes: Sequence[Outcome] = await write(batch) if batch else []
    if len(outcomes) != len(batch):
        raise RuntimeError(f"{field}: {len(batch)} items written, {len(outcomes)} outcomes")
    written = iter(outcomes)
    answers: list[Answer] = []
    for i, (item, c) in enumerate(zip(items, checked, strict=True)):
        if isinstance(c, ItemError):
            answers.append(refuse(item, c))
        else:
            outcome = c.outcome if isinstance(c, Answered) else next(written)
            answers.append(answer(item, f"{field}[{i}]", outcome))
    return answers
