"""Validation of a submitted run's input, before anything is written.

Pure functions: they take the job definitions as the client sent them and either return
them as the database layer writes them, or raise a client error naming the exact field
(``jobs[2].dependsOn``).
Checking everything up front keeps ``submitRun`` all-or-nothing without a rollback dance,
and a cycle caught here can never leave a run whose jobs wait for each other forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from runql.db.lifecycle import JobDefinition
from runql.resolvers.checks import check_json_object, check_name
from runql.resolvers.errors import BadInput, LimitExceeded

__all__ = ["JobDefinition", "find_cycle", "validate_jobs"]


def validate_jobs(
    jobs: Sequence[JobDefinition], *, max_jobs: int, max_json_bytes: int, max_json_depth: int
) -> list[JobDefinition]:
    """Check a run's job list and return it as the database layer writes it, in the order
    given: repeated dependencies dropped, each ``spec`` checked to be a JSON object.

    ``max_jobs`` bounds the logical jobs the run creates (jobs times replicas), because
    that is what costs rows and claims. Raises on the first problem found, naming it.
    """
    if not jobs:
        raise BadInput("jobs", "a run needs at least one job")
    if len(jobs) > max_jobs:
        raise LimitExceeded("jobs", max_jobs, len(jobs))
    index_of: dict[str, int] = {}
    for i, job in enumerate(jobs):
        check_name(job.name, f"jobs[{i}].name")
        if job.name in index_of:
            raise BadInput(
                f"jobs[{i}].name",
                f"duplicate job name {job.name!r} (also jobs[{index_of[job.name]}])",
            )
        index_of[job.name] = i
        if job.replicas < 1:
            raise BadInput(f"jobs[{i}].replicas", "must be at least 1")
        if job.retry_limit < 0:
            raise BadInput(f"jobs[{i}].retry.limit", "must not be negative")
    total = sum(job.replicas for job in jobs)
    if total > max_jobs:
        raise LimitExceeded("jobs (logical jobs: sum of replicas)", max_jobs, total)
    for i, job in enumerate(jobs):
        for upstream in job.depends_on:
            if upstream not in index_of:
                raise BadInput(f"jobs[{i}].dependsOn", f"unknown job {upstream!r}")
    cycle = find_cycle({job.name: tuple(dict.fromkeys(job.depends_on)) for job in jobs})
    if cycle:
        first = index_of[cycle[0]]
        raise BadInput(f"jobs[{first}].dependsOn", "dependency cycle: " + " -> ".join(cycle))
    return [
        replace(
            job,
            depends_on=tuple(dict.fromkeys(job.depends_on)),
            spec=check_json_object(
                job.spec, f"jobs[{i}].spec", max_bytes=max_json_bytes, max_depth=max_json_depth
            ),
        )
        for i, job in enumerate(jobs)
    ]


def find_cycle(depends_on: dict[str, tuple[str, ...]]) -> list[str]:
    """A dependency cycle as a path ``[a, b, ..., a]`` (a waits for b ...), or ``[]``.

    Iterative depth-first search with three colours, so a 5,000-job chain cannot hit
    Python's recursion limit. Every name in the values must be a key.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(depends_on, white)
    for root in depends_on:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        pending = [iter(depends_on[root])]
        colour[root] = grey
        while pending:
            upstream = next(pending[-1], None)
            if upstream is None:
                colour[path.pop()] = black
                pending.pop()
            elif colour[upstream] == grey:
                return [*path[path.index(upstream) :], upstream]
            elif colour[upstream] == white:
                colour[upstream] = grey
                path.append(upstream)
                pending.append(iter(depends_on[upstream]))
    return []
