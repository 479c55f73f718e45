"""The contract every bulk mutation keeps (``runql.resolvers.batch.answer_each``): each
item checked, bad items answered with their error, the good ones in ONE batch write in
request order, answers in the order of the request. The mutations' own tests
(tests/lifecycle, tests/runner, tests/http/test_bad_input.py) show it through the API;
this pins the helper that restartRuns and later bulk calls reuse."""

from __future__ import annotations

import pytest

from runql.resolvers.batch import Answered, answer_each
from runql.resolvers.checks import parse_id
from runql.resolvers.errors import ItemError


def _check(raw: str, label: str) -> int | Answered[str]:
    number = parse_id(raw, label)
    return Answered("too big") if number is None else number


async def test_bad_items_answer_alone_and_the_good_ones_go_in_one_write() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[str]:
        writes.append(items)
        return [f"wrote {n}" for n in items]

    answers = await answer_each(
        "ids",
        ["3", "x", "1", str(2**64), "3"],
        check=_check,
        write=write,
        answer=lambda raw, label, outcome: f"{label} {raw}: {outcome}",
        refuse=lambda raw, error: error,
    )

    assert writes == [[3, 1, 3]]  # one write, request order, repeats included
    assert answers[0] == "ids[0] 3: wrote 3"
    assert isinstance(answers[1], ItemError) and answers[1].message.startswith("ids[1]: ")
    assert answers[1].code == "BAD_USER_INPUT"
    assert answers[2] == "ids[2] 1: wrote 1"
    assert answers[3] == f"ids[3] {2**64}: too big"  # answered without the write
    assert answers[4] == "ids[4] 3: wrote 3"


async def test_nothing_is_written_when_no_item_is_good() -> None:
    async def write(items: list[int]) -> list[str]:
        raise AssertionError("no write expected")

    answers = await answer_each(
        "ids",
        ["x", str(2**64)],
        check=_check,
        write=write,
        answer=lambda raw, label, outcome: outcome,
        refuse=lambda raw, error: error.code,
    )

    assert answers == ["BAD_USER_INPUT", "too big"]


async def test_a_write_that_loses_an_outcome_is_a_bug_not_a_short_answer() -> None:
    async def write(items: list[int]) -> list[str]:
        return ["only one"]

    with pytest.raises(RuntimeError, match="2 items written, 1 outcomes"):
        await answer_each(
            "ids",
            ["1", "2"],
            check=_check,
            write=write,
            answer=lambda raw, label, outcome: outcome,
            refuse=lambda raw, error: error.code,
        )
