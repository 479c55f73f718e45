"""Job DAG validation (pure functions): every problem is caught with the field named.

The API-level cases (and "nothing is written") are in ``test_submit.py``; these
guard the algorithm itself: cycles anywhere in the graph, long chains, the order kept.
"""

from __future__ import annotations

import pytest

from runql.db.lifecycle import JobDefinition
from runql.resolvers.checks import check_json_object
from runql.resolvers.dag import find_cycle, validate_jobs
from runql.resolvers.errors import BadInput, LimitExceeded


def _validate(*jobs: JobDefinition, max_jobs: int = 100) -> list[JobDefinition]:
    return validate_jobs(jobs, max_jobs=max_jobs, max_json_bytes=1000, max_json_depth=8)


def test_valid_dag_keeps_order_and_drops_repeated_dependencies() -> None:
    jobs = _validate(
        JobDefinition("a"),
        JobDefinition(
            "b", replicas=3, depends_on=("a", "a"), retry_limit=2, retry_on_failure=False
        ),
        JobDefinition("c", depends_on=("b", "a"), spec={"k": 1}),
    )

    assert jobs == [
        JobDefinition("a"),
        JobDefinition("b", replicas=3, depends_on=("a",), retry_limit=2, retry_on_failure=False),
        JobDefinition("c", depends_on=("b", "a"), spec={"k": 1}),
    ]


def test_no_cycle_in_a_diamond() -> None:
    assert find_cycle({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}) == []


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": ("a",)}, ["a", "a"]),
        ({"a": ("b",), "b": ("a",)}, ["a", "b", "a"]),
        # the cycle sits behind an acyclic prefix: the path reported starts at the cycle
        ({"x": ("a",), "a": ("b",), "b": ("c",), "c": ("a",)}, ["a", "b", "c", "a"]),
        # found from a later root after a clean component
        ({"p": (), "q": ("p",), "m": ("n",), "n": ("m",)}, ["m", "n", "m"]),
    ],
)
def test_cycles_are_reported_as_a_path(graph: dict[str, tuple[str, ...]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = 20_000
    chain = {f"j{i}": (f"j{i - 1}",) if i else () for i in range(n)}
    assert find_cycle(chain) == []
    chain["j0"] = (f"j{n - 1}",)
    assert len(find_cycle(chain)) == n + 1


def test_cycle_error_names_the_job_field_and_the_path() -> None:
    with pytest.raises(BadInput) as raised:
        _validate(
            JobDefinition("a"),
            JobDefinition("b", depends_on=("c",)),
            JobDefinition("c", depends_on=("b",)),
        )

    assert raised.value.extensions == {"code": "BAD_USER_INPUT", "field": "jobs[1].dependsOn"}
    assert raised.value.message == "jobs[1].dependsOn: dependency cycle: b -> c -> b"


def test_logical_job_limit_counts_replicas() -> None:
    _validate(JobDefinition("a", replicas=2), JobDefinition("b", replicas=2), max_jobs=4)
    with pytest.raises(LimitExceeded) as raised:
        _validate(JobDefinition("a", replicas=3), JobDefinition("b", replicas=2), max_jobs=4)

    assert raised.value.extensions["limit"] == 4
    assert "(got 5)" in raised.value.message


def test_json_documents_must_be_objects_within_the_size_limit() -> None:
    assert check_json_object(None, "spec", max_bytes=10, max_depth=8) == {}
    assert check_json_object({"a": "é"}, "spec", max_bytes=10, max_depth=8) == {
        "a": "é"
    }  # 10 bytes in UTF-8
    with pytest.raises(LimitExceeded):
        check_json_object({"a": "éé"}, "spec", max_bytes=10, max_depth=8)
    with pytest.raises(BadInput):
        check_json_object("{}", "spec", max_bytes=10, max_depth=8)
