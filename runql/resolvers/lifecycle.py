"""The functions behind ``submitRun``, ``stopRuns``, ``deleteRuns`` and the
``Run.viewerCanStop`` / ``Run.viewerCanDelete`` fields.

Bulk calls answer per requested run, in request order: problems with one run are data
(``{code, message}``), not a failed request. Problems with the request as a whole (too
many ids, both ``runIds`` and ``names``) are top-level errors naming the argument.
Each is ``runql.resolvers.batch.answer_each``; a bulk call over runs by id is
:func:`answer_runs_by_id` with its database write (``(session, viewer, locked runs) ->
outcome per run id``, as ``runql.db.lifecycle.stop_runs`` and ``delete_runs``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from runql.db import lifecycle
from runql.db import restart as restart_db
from runql.db.enums import RestartScope, RunStatus
from runql.db.lifecycle import JobDefinition, LockedRuns, RunOutcome
from runql.db.models import Run
from runql.db.visibility import Viewer
from runql.error_codes import ErrorCode
from runql.resolvers.batch import Answered, answer_each
from runql.resolvers.checks import (
    check_batch,
    check_json_object,
    check_name,
    check_text,
    parse_id,
)
from runql.resolvers.context import Context
from runql.resolvers.dag import validate_jobs
from runql.resolvers.errors import BadInput, ItemError, NotFound

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
    if refusal == ErrorCode.INVALID_STATE:  # restartRuns
        if status in restart_db.RESTARTABLE:
            return f"{label}: every job is DONE, nothing failed to re-run (scope ALL re-runs all)"
        final = ", ".join(sorted(s.value for s in restart_db.RESTARTABLE))
        return f"{label}: still {status}; only finished runs ({final}) can be restarted"
    return f"{label}: still {status}; stop it first, only finished runs can be deleted"


@dataclass(frozen=True)
class Found:
    """What the batch write found of one requested run: the run (None when unknown or
    not visible) and its outcome."""

    run: Run | None = None
    outcome: RunOutcome | None = None

    @classmethod
    def of(cls, run: Run | None, outcomes: dict[int, RunOutcome]) -> Found:
        return cls(run, None if run is None else outcomes.get(run.id))


def _answer(key: str, found: Found, *, by_name: bool, action: str) -> RunAnswer:
    """The answer for the run requested as ``key`` (an id, or a name ``by_name``)."""
    run, outcome = found.run, found.outcome
    label = f"run {key!r}" if by_name else f"run {key}"
    refusal = ErrorCode.NOT_FOUND if outcome is None else outcome.refusal
    if refusal is not None:
        error = ItemError(code=refusal.value, message=_message(refusal, label, run, action))
        shown = None
    else:
        error, shown = None, outcome.run if outcome is not None else None
    return RunAnswer(
        run_id=str(run.id) if run is not None else (None if by_name else key),
        name=key if by_name else (run.name if run is not None else None),
        run=shown,
        error=error,
    )


def _refused(key: str, error: ItemError) -> RunAnswer:
    return RunAnswer(run_id=None, name=None, run=None, error=error)


#: A bulk write over locked runs (``lifecycle.stop_runs``, ``lifecycle.delete_runs``).
RunsWrite = Callable[[AsyncSession, Viewer, LockedRuns], Awaitable[dict[int, RunOutcome]]]


async def answer_runs_by_id(
    ctx: Context, run_ids: Sequence[str], write: RunsWrite, *, action: str
) -> list[RunAnswer]:
    """A bulk call over runs by id (``runql.resolvers.batch``): each id checked, the runs
    of the good ones locked and passed to ``write`` in one transaction, a result per id in
    request order. ``action`` names what was refused (``... may {action} it``)."""
    check_batch("runIds", len(run_ids), ctx.settings.max_stop_batch)
    return await _answer_runs(ctx, "runIds", run_ids, _check_id, write, action=action)


def _check_id(raw: str, label: str) -> int | Answered[Found]:
    run_id = parse_id(raw, label)
    return Answered(Found()) if run_id is None else run_id


async def _answer_runs(
    ctx: Context,
    field: str,
    keys: Sequence[str],
    check: Callable[[str, str], Any],
    write: RunsWrite,
    *,
    action: str,
    project: str | None = None,
) -> list[RunAnswer]:
    """:func:`~runql.resolvers.batch.answer_each` over runs: by id, or by name in
    ``project``."""
    viewer = ctx.viewer
    by_name = project is not None

    async def write_runs(wanted: list[Any]) -> list[Found]:
        async with ctx.db.write() as session:
            if by_name:
                names = list(dict.fromkeys(wanted))
                locked = await lifecycle.lock_runs(
                    session, viewer, project_name=project, names=names
                )
            else:
                locked = await lifecycle.lock_runs(session, viewer, ids=sorted(set(wanted)))
            outcomes = await write(session, viewer, locked)
        runs: dict[Any, Run] = locked.by_name() if by_name else locked.by_id()
        return [Found.of(runs.get(key), outcomes) for key in wanted]

    return await answer_each(
        field,
        keys,
        check=check,
        write=write_runs,
        answer=lambda key, _, found: _answer(key, found, by_name=by_name, action=action),
        refuse=_refused,
    )


async def answer_runs(
    ctx: Context,
    *,
    run_ids: Sequence[str] | None,
    project: str | None,
    names: Sequence[str] | None,
    write: RunsWrite,
    action: str,
) -> list[RunAnswer]:
    """A bulk call over runs given by id, or by name in a project (``stopRuns``,
    ``restartRuns``): checks, one locked ``write``, a result per request in its order."""
    if run_ids is not None and (project is not None or names is not None):
        raise BadInput("runIds", "pass either runIds, or project and names, not both")
    if run_ids is not None:
        return await answer_runs_by_id(ctx, run_ids, write, action=action)
    if project is None or names is None:
        raise BadInput(
            "project" if project is None else "names",
            "pass runIds, or project together with names",
        )
    check_batch("names", len(names), ctx.settings.max_stop_batch)
    check_text(project, "project")
    return await _answer_runs(
        ctx, "names", names, check_text, write, action=action, project=project
    )


async def stop_runs(
    ctx: Context,
    *,
    run_ids: Sequence[str] | None,
    project: str | None,
    names: Sequence[str] | None,
    abort: bool,
) -> list[RunAnswer]:
    """Stop (or abort) many runs in one short write transaction; a result per request."""
    stop = partial(lifecycle.stop_runs, abort=abort)
    return await answer_runs(
        ctx, run_ids=run_ids, project=project, names=names, write=stop, action="stop"
    )


async def restart_runs(
    ctx: Context,
    *,
    run_ids: Sequence[str] | None,
    project: str | None,
    names: Sequence[str] | None,
    scope: RestartScope,
) -> list[RunAnswer]:
    """Restart many finished runs in one short write transaction (``runql.db.restart``);
    a result per request."""
    restart = partial(restart_db.restart_runs, scope=scope)
    return await answer_runs(
        ctx, run_ids=run_ids, project=project, names=names, write=restart, action="restart"
    )


async def delete_runs(ctx: Context, *, run_ids: Sequence[str]) -> list[RunAnswer]:
    """Soft-delete many finished runs in one short write transaction; a result per id."""
    return await answer_runs_by_id(ctx, run_ids, lifecycle.delete_runs, action="delete")


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
