"""The function behind ``restartRuns``: restart many finished runs in one short write
transaction, a result per requested run in request order.

The same shape as ``stopRuns`` (``runql.resolvers.lifecycle``): checks per item first
(a malformed id is that item's ``BAD_USER_INPUT``), one batch (lock the runs, apply the
write), then the answers in request order. Problems with the request as a whole (too many
ids, both ``runIds`` and ``names``) are top-level errors naming the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runql.db import lifecycle
from runql.db import restart as restart_db
from runql.db.enums import RestartScope
from runql.db.lifecycle import LockedRuns, RunOutcome
from runql.db.models import Run
from runql.error_codes import ErrorCode
from runql.resolvers.checks import check_batch, check_each, check_text, parse_id
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput, ClientError, ItemError
from runql.resolvers.lifecycle import RunAnswer

_FINAL = ", ".join(sorted(status.value for status in restart_db.RESTARTABLE))


def _message(refusal: ErrorCode, label: str, run: Run | None) -> str:
    if refusal == ErrorCode.NOT_FOUND or run is None:
        return f"{label}: not found (unknown, deleted, or in a project you are not a member of)"
    if refusal == ErrorCode.FORBIDDEN:
        return (
            f"{label}: only the user who submitted the run, project admins and managers, "
            "and admins may restart it"
        )
    if run.status in restart_db.RESTARTABLE:  # finished, but nothing to re-run
        return f"{label}: every job is DONE, nothing failed to re-run (scope ALL re-runs all)"
    return f"{label}: still {run.status}; only finished runs ({_FINAL}) can be restarted"


def _answers(
    keys: Sequence[str],
    find: Callable[[str], Run | None],
    outcomes: dict[int, RunOutcome],
    *,
    by_name: bool,
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
        refusal = ErrorCode.NOT_FOUND if outcome is None else outcome.refusal
        error = None
        if refusal is not None:
            label = f"run {key!r}" if by_name else f"run {key}"
            error = ItemError(code=refusal.value, message=_message(refusal, label, run))
        answers.append(
            RunAnswer(
                run_id=str(run.id) if run is not None else (None if by_name else key),
                name=key if by_name else (run.name if run is not None else None),
                run=outcome.run if outcome is not None and error is None else None,
                error=error,
            )
        )
    return answers


async def restart_runs(
    ctx: Context,
    *,
    run_ids: Sequence[str] | None,
    project: str | None,
    names: Sequence[str] | None,
    scope: RestartScope,
) -> list[RunAnswer]:
    """Restart many finished runs (by id, or by name in a project); a result per request."""
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
        locked, outcomes = await _locked_restart(ctx, scope, project_name=project, names=wanted)
        return _answers(names, locked.by_name().get, outcomes, by_name=True, malformed=malformed)
    check_batch("runIds", len(run_ids), ctx.settings.max_stop_batch)
    parsed, malformed = check_each(run_ids, parse_id, "runIds")
    ids = sorted({run_id for run_id in parsed.values() if run_id is not None})
    locked, outcomes = await _locked_restart(ctx, scope, ids=ids)
    by_id = locked.by_id()

    def find(raw: str) -> Run | None:
        run_id = parsed.get(raw)
        return None if run_id is None else by_id.get(run_id)

    return _answers(run_ids, find, outcomes, by_name=False, malformed=malformed)


async def _locked_restart(
    ctx: Context,
    scope: RestartScope,
    *,
    ids: Sequence[int] = (),
    project_name: str | None = None,
    names: Sequence[str] = (),
) -> tuple[LockedRuns, dict[int, RunOutcome]]:
    """Lock the requested runs and restart them, in one transaction (none when nothing
    well-formed was asked for)."""
    if not ids and not names:
        return LockedRuns(runs=[], roles={}), {}
    async with ctx.db.write() as session:
        locked = await lifecycle.lock_runs(
            session, ctx.viewer, ids=ids, project_name=project_name, names=names
        )
        outcomes = await restart_db.restart_runs(session, ctx.viewer, locked, scope=scope)
    return locked, outcomes
