"""The functions behind ``submitRun``, ``stopRuns``, ``deleteRuns`` and the
``Run.viewerCanStop`` / ``Run.viewerCanDelete`` fields.

Bulk calls answer per requested run, in request order: problems with one run are data
(``{code, message}``), not a failed request. Problems with the request as a whole (too
many ids, both ``runIds`` and ``names``) are top-level errors naming the argument.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from runql.db import lifecycle
from runql.db.enums import RunStatus
from runql.db.lifecycle import JobDefinition, LockedRuns, RunOutcome
from runql.db.models import Run
from runql.db.visibility import Viewer
from runql.error_codes import ErrorCode
from runql.resolvers.checks import (
    check_batch,
    check_each,
    check_json_object,
    check_name,
    check_text,
    parse_id,
)
from runql.resolvers.context import Context
from runql.resolvers.dag import validate_jobs
from runql.resolvers.errors import BadInput, ClientError, ItemError, NotFound

# --- submitRun -------------------------------------------------------------------------


async def submit_run(
    ctx: Context,
    *,
    project: str,
    jobs: Sequence[JobDefinition],
    name: str | None,
    priority: int,
    spec: Any,
) -> Run:
    """Validate everything, then create the run and submission 0 of each logical job.

    ``jobs`` are as the client sent them (``validate_jobs`` checks them); ``spec`` is any
    JSON value until checked here. Members of the project (any role) and admins may
    submit: exactly the viewers who can see the project, so an unknown and a foreign
    project get the same answer.
    """
    viewer = ctx.viewer
    settings = ctx.settings
    check_text(project, "project")
    if name is not None:
        check_name(name, "name")
    checked_spec = check_json_object(
        spec, "spec", max_bytes=settings.max_json_bytes, max_depth=settings.max_json_depth
    )
    definitions = validate_jobs(
        jobs,
        max_jobs=settings.max_jobs_per_run,
        max_json_bytes=settings.max_json_bytes,
        max_json_depth=settings.max_json_depth,
    )
    found = await ctx.loaders.project_by_name.load(project)
    if found is None:
        raise NotFound(
            f"project: no project named {project!r} among the projects you are a member of",
            field="project",
        )
    try:
        async with ctx.db.write() as session:
            return await lifecycle.submit_run(
                session,
                project_id=found.id,
                user_id=viewer.user_id,
                name=name,
                jobs=definitions,
                spec=checked_spec,
                priority=priority,
            )
    except lifecycle.RunNameTaken as exc:
        raise BadInput(
            "name",
            f"project {found.name!r} already has a run named {exc.name!r}; "
            "choose another name or leave it out to get a generated one",
        ) from None


# --- stopRuns / deleteRuns -------------------------------------------------------------


@dataclass(frozen=True)
class RunAnswer:
    """The answer for one requested run: ``run`` after the change when it applied, else
    ``error``; ``run_id`` and ``name`` say which run it is (what was found of it)."""

    run_id: str | None
    name: str | None
    run: Run | None
    error: ItemError | None


def _message(refusal: ErrorCode, label: str, run: Run | None, action: str) -> str:
    if refusal == ErrorCode.NOT_FOUND:
        return f"{label}: not found (unknown, deleted, or in a project you are not a member of)"
    if refusal == ErrorCode.FORBIDDEN:
        return (
            f"{label}: only the user who submitted the run, project admins and managers, "
            f"and admins may {action} it"
        )
    status = run.status if run is not None else "unknown"
    if refusal == ErrorCode.ALREADY_FINISHED:
        return f"{label}: already finished ({status})"
    return f"{label}: still {status}; stop it first, only finished runs can be deleted"


def _results(
    keys: Sequence[str],
    find: Callable[[str], Run | None],
    outcomes: dict[int, RunOutcome],
    *,
    by_name: bool,
    action: str,
    malformed: dict[str, ClientError],
) -> list[RunAnswer]:
    answers = []
    for key in keys:
        bad = malformed.get(key)
        if bad is not None:
            answers.append(RunAnswer(run_id=None, name=None, run=None, error=ItemError.of(bad)))
            continue
        run = find(key)
        outcome = outcomes.get(run.id) if run is not None else None
        label = f"run {key!r}" if by_name else f"run {key}"
        refusal = ErrorCode.NOT_FOUND if outcome is None else outcome.refusal
        if refusal is not None:
            error = ItemError(code=refusal.value, message=_message(refusal, label, run, action))
            shown = None
        else:
            error, shown = None, outcome.run if outcome is not None else None
        answers.append(
            RunAnswer(
                run_id=str(run.id) if run is not None else (None if by_name else key),
                name=key if by_name else (run.name if run is not None else None),
                run=shown,
                error=error,
            )
        )
    return answers


async def stop_runs(
    ctx: Context,
    *,
    run_ids: Sequence[str] | None,
    project: str | None,
    names: Sequence[str] | None,
    abort: bool,
) -> list[RunAnswer]:
    """Stop (or abort) many runs in one short write transaction; a result per request."""
    viewer = ctx.viewer
    if run_ids is not None and (project is not None or names is not None):
        raise BadInput("runIds", "pass either runIds, or project and names, not both")
    if run_ids is None:
        if project is None or names is None:
            raise BadInput(
                "project" if project is None else "names",
                "pass runIds, or project together with names",
            )
        check_batch("names", len(names), ctx.settings.max_stop_batch)
        check_text(project, "project")
        _, malformed = check_each(names, check_text, "names")
        wanted = [name for name in dict.fromkeys(names) if name not in malformed]
        if not wanted:
            locked, outcomes = LockedRuns(runs=[], roles={}), {}
        else:
            async with ctx.db.write() as session:
                locked = await lifecycle.lock_runs(
                    session, viewer, project_name=project, names=wanted
                )
                outcomes = await lifecycle.stop_runs(session, viewer, locked, abort=abort)
        by_name = locked.by_name()
        return _results(
            names, by_name.get, outcomes, by_name=True, action="stop", malformed=malformed
        )
    check_batch("runIds", len(run_ids), ctx.settings.max_stop_batch)
    parsed, malformed = check_each(run_ids, parse_id, "runIds")
    locked, outcomes = await _locked_write(ctx, parsed, partial(lifecycle.stop_runs, abort=abort))
    by_id = locked.by_id()
    return _results(
        run_ids,
        _finder(parsed, by_id),
        outcomes,
        by_name=False,
        action="stop",
        malformed=malformed,
    )


async def delete_runs(ctx: Context, *, run_ids: Sequence[str]) -> list[RunAnswer]:
    """Soft-delete many finished runs in one short write transaction; a result per id."""
    check_batch("runIds", len(run_ids), ctx.settings.max_stop_batch)
    parsed, malformed = check_each(run_ids, parse_id, "runIds")
    locked, outcomes = await _locked_write(ctx, parsed, lifecycle.delete_runs)
    by_id = locked.by_id()
    return _results(
        run_ids,
        _finder(parsed, by_id),
        outcomes,
        by_name=False,
        action="delete",
        malformed=malformed,
    )


def _finder(parsed: dict[str, int | None], by_id: dict[int, Run]) -> Callable[[str], Run | None]:
    def find(raw: str) -> Run | None:
        run_id = parsed.get(raw)
        return None if run_id is None else by_id.get(run_id)

    return find


#: A bulk write over locked runs (``lifecycle.stop_runs``, ``lifecycle.delete_runs``).
RunsWrite = Callable[[AsyncSession, Viewer, LockedRuns], Awaitable[dict[int, RunOutcome]]]


async def _locked_write(
    ctx: Context, parsed: dict[str, int | None], write: RunsWrite
) -> tuple[LockedRuns, dict[int, RunOutcome]]:
    """Lock the requested runs by id and apply ``write`` to them, in one transaction."""
    viewer = ctx.viewer
    ids = sorted({run_id for run_id in parsed.values() if run_id is not None})
    if not ids:
        return LockedRuns(runs=[], roles={}), {}
    async with ctx.db.write() as session:
        locked = await lifecycle.lock_runs(session, viewer, ids=ids)
        outcomes = await write(session, viewer, locked)
    return locked, outcomes


# --- Run.viewerCanStop / Run.viewerCanDelete -------------------------------------------


async def viewer_may_manage(ctx: Context, run: Run) -> bool:
    """The stop/delete permission rule; the project role is batched per request and
    only looked up when neither admin nor submitter already decides it."""
    viewer = ctx.viewer
    if viewer.is_admin or run.user_id == viewer.user_id:
        return True
    role = await ctx.loaders.viewer_role_by_project.load(run.project_id)
    return lifecycle.may_manage_run(viewer, run.user_id, role)


async def viewer_can_stop(ctx: Context, run: Run) -> bool:
    if run.deleted or RunStatus(run.status).is_finished:
        return False
    return await viewer_may_manage(ctx, run)


async def viewer_can_delete(ctx: Context, run: Run) -> bool:
    if run.deleted or not RunStatus(run.status).is_finished:
        return False
    return await viewer_may_manage(ctx, run)
