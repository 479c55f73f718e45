"""Hostile input answers a clear error naming the field, changes nothing, and never a 500,
the same on SQLite and PostgreSQL.

PostgreSQL refuses NUL in text, a lone surrogate cannot be encoded at all, ``"²"`` passes
``str.isdigit`` but not ``int()``, and an offset can push a time out of Python's range:
each of these used to answer ``INTERNAL_SERVER_ERROR`` (or was stored silently on
SQLite). Bodies are sent with ``ensure_ascii`` JSON so lone surrogates reach the server as
the ``\\ud800`` escapes a real client sends.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.models import Run
from tests.factories import Factory, ProjectHandle, UserHandle
from tests.runner.helpers import COMPLETE, claim, completion, job_rows

NUL = "bad\x00name"
SURROGATE = "bad\ud800name"

SUBMIT = """
mutation($input: SubmitRunInput!) {
  submitRun(input: $input) { run { id name } }
}
"""
STOP = """
mutation($input: StopRunsInput!) {
  stopRuns(input: $input) { results { runId name run { status } error { code message } } }
}
"""
DELETE = """
mutation($ids: [ID!]!) {
  deleteRuns(input: {runIds: $ids}) { results { runId run { id } error { code message } } }
}
"""
RENEW = """
mutation($input: RenewLeasesInput!) {
  renewLeases(input: $input) { results { jobId mustStop error { code message } } }
}
"""
RUNS = """
query($project: String, $filter: RunFilter, $first: Int) {
  runs(project: $project, filter: $filter, first: $first) { edges { node { id } } }
}
"""


async def post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    """POST as a client would: JSON with ``\\uXXXX`` escapes (so lone surrogates travel)."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = await http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def only_error(payload: dict[str, Any]) -> dict[str, Any]:
    errors = payload.get("errors")
    assert errors and len(errors) == 1, payload
    error: dict[str, Any] = errors[0]
    assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error
    return error


async def count_runs(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Run)) or 0)


@pytest.fixture
async def member(factory: Factory) -> tuple[UserHandle, ProjectHandle]:
    user = await factory.user()
    project = await factory.project("proj", members=[(user, MemberRole.USER)])
    return user, project


def _submit_input(**changes: Any) -> dict[str, Any]:
    job = {"name": "main", "spec": {"cmd": "true"}}
    job.update(changes.pop("job", {}))
    return {"project": "proj", "jobs": [job], **changes}


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("submit_input", "field"),
    [
        (lambda t: _submit_input(name=t), "name"),
        (lambda t: _submit_input(project=t), "project"),
        (lambda t: _submit_input(job={"name": t}), "jobs[0].name"),
        (lambda t: _submit_input(spec={t: 1}), "spec (a key)"),
        (lambda t: _submit_input(spec={"a": [{"b": t}]}), "spec.a[0].b"),
        (lambda t: _submit_input(job={"spec": {"env": {"X": t}}}), "jobs[0].spec.env.X"),
    ],
    ids=["run-name", "project", "job-name", "spec-key", "spec-value", "job-spec-value"],
)
async def test_submit_run_refuses_unstorable_text(
    http: httpx.AsyncClient,
    db: Database,
    member: tuple[UserHandle, ProjectHandle],
    submit_input: Any,
    field: str,
    text: str,
) -> None:
    user, _ = member
    payload = await post(http, SUBMIT, {"input": submit_input(text)}, user.token)
    error = only_error(payload)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    expected = "NUL character" if text == NUL else "lone surrogate U+D800"
    assert expected in error["message"]
    assert await count_runs(db) == 0


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("variables", "field"),
    [
        (lambda t: {"project": t}, "project"),
        (lambda t: {"filter": {"nameContains": t}}, "filter.nameContains"),
        (lambda t: {"filter": {"userName": t}}, "filter.userName"),
    ],
    ids=["project", "nameContains", "userName"],
)
async def test_runs_filters_refuse_unstorable_text(
    http: httpx.AsyncClient,
    member: tuple[UserHandle, ProjectHandle],
    variables: Any,
    field: str,
    text: str,
) -> None:
    user, _ = member
    error = only_error(await post(http, RUNS, variables(text), user.token))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_project_lookup_refuses_unstorable_text(
    http: httpx.AsyncClient, member: tuple[UserHandle, ProjectHandle], text: str
) -> None:
    user, _ = member
    query = "query($name: String!) { project(name: $name) { id } }"
    error = only_error(await post(http, query, {"name": text}, user.token))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("field", ["runnerName", "project"])
async def test_claim_refuses_unstorable_text(
    http: httpx.AsyncClient,
    db: Database,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
    field: str,
    text: str,
) -> None:
    user, project = member
    run_id = await factory.run(project, user)
    claim_input = {"runnerName": "r1", "limit": 5, field: text}
    query = (
        "mutation($input: ClaimJobsInput!) { claimJobs(input: $input) { claims { claimToken } } }"
    )
    error = only_error(await post(http, query, {"input": claim_input}, user.token))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert [job.status for job in await job_rows(db, run_id)] == ["SUBMITTED"]


# --- ids -------------------------------------------------------------------------------

#: Unicode digits that ``str.isdigit`` accepts: superscript two, Arabic-Indic one,
#: fullwidth one. None is an id.
ARABIC_ONE = "\u0661"
FULLWIDTH_ONE = "\uff11"
UNICODE_DIGITS = ["²", ARABIC_ONE, FULLWIDTH_ONE]


@pytest.mark.parametrize("raw", UNICODE_DIGITS)
@pytest.mark.parametrize("root", ["run", "job"])
async def test_lookups_by_id_accept_ascii_digits_only(
    http: httpx.AsyncClient,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
    root: str,
    raw: str,
) -> None:
    user, project = member
    await factory.run(project, user)  # run 1 and job 1 exist: ARABIC_ONE must not find them
    query = f"query($id: ID!) {{ {root}(id: $id) {{ id }} }}"
    payload = await post(http, query, {"id": raw}, user.token)
    error = only_error(payload)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
    assert "decimal ASCII digits" in error["message"]
    assert payload["data"] == {root: None}


@pytest.mark.parametrize("raw", [*UNICODE_DIGITS, NUL, SURROGATE])
async def test_stop_and_delete_answer_a_malformed_id_on_its_own_item(
    http: httpx.AsyncClient,
    db: Database,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
    raw: str,
) -> None:
    user, project = member
    first, second = await factory.run(project, user), await factory.run(project, user)
    ids = [str(first), raw, str(second)]
    stopped = await post(http, STOP, {"input": {"runIds": ids, "abort": True}}, user.token)
    results = stopped["data"]["stopRuns"]["results"]
    assert [r["run"] and r["run"]["status"] for r in results] == ["TERMINATED", None, "TERMINATED"]
    assert results[1]["error"]["code"] == "BAD_USER_INPUT"
    assert results[1]["error"]["message"].startswith("runIds[1]: ")
    deleted = await post(http, DELETE, {"ids": ids}, user.token)
    results = deleted["data"]["deleteRuns"]["results"]
    assert [r["run"] is not None for r in results] == [True, False, True]
    assert results[1]["error"]["code"] == "BAD_USER_INPUT"
    async with db.read() as session:
        assert set(await session.scalars(select(Run.deleted))) == {True}


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_stop_by_name_answers_an_unstorable_name_on_its_own_item(
    http: httpx.AsyncClient,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
    text: str,
) -> None:
    user, project = member
    await factory.run(project, user, name="good")
    variables = {"input": {"project": "proj", "names": ["good", text]}}
    results = (await post(http, STOP, variables, user.token))["data"]["stopRuns"]["results"]
    assert results[0]["run"]["status"] == "TERMINATED"
    assert results[1]["run"] is None
    assert results[1]["error"]["code"] == "BAD_USER_INPUT"
    assert results[1]["error"]["message"].startswith("names[1]: ")
    error = only_error(
        await post(http, STOP, {"input": {"project": text, "names": ["good"]}}, user.token)
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "project"}


# --- runner batches: one bad item never holds back the others --------------------------


@pytest.mark.parametrize(
    "bad_item",
    [
        lambda c: {**completion(c), "jobId": "²"},
        lambda c: {**completion(c), "jobId": ARABIC_ONE},
        lambda c: {**completion(c), "claimToken": SURROGATE},
        lambda c: {**completion(c), "claimToken": NUL},
        lambda c: completion(c, result={"log": NUL}),
        lambda c: completion(c, result={"x": float("nan")}),
    ],
    ids=["superscript-id", "arabic-id", "surrogate-token", "nul-token", "nul-result", "nan"],
)
async def test_complete_jobs_answers_a_bad_item_alone(
    http: httpx.AsyncClient,
    gql: Any,
    db: Database,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
    bad_item: Any,
) -> None:
    from runql.db.lifecycle import JobDefinition

    user, project = member
    run_id = await factory.run(project, user, jobs=[JobDefinition(f"j{i}") for i in range(3)])
    claims = await claim(gql, user.token, 3)
    items = [completion(claims[0]), bad_item(claims[1]), completion(claims[2])]
    body = await post(http, COMPLETE, {"input": {"completions": items}}, user.token)
    assert "errors" not in body, body["errors"]
    results = body["data"]["completeJobs"]["results"]
    assert [r["error"] and r["error"]["code"] for r in results] == [None, "BAD_USER_INPUT", None]
    assert results[1]["error"]["message"].startswith("completions[1].")
    by_id = {str(job.id): job.status for job in await job_rows(db, run_id)}
    assert by_id[claims[0]["job"]["id"]] == "DONE"
    assert by_id[claims[1]["job"]["id"]] == "RUNNING"  # untouched, still claimed
    assert by_id[claims[2]["job"]["id"]] == "DONE"


async def test_complete_jobs_keeps_a_message_with_unstorable_characters(
    http: httpx.AsyncClient,
    gql: Any,
    db: Database,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
) -> None:
    """A captured stderr tail often holds NUL or broken UTF-16: the message is free text,
    kept with such characters replaced by U+FFFD, on both backends alike."""
    from runql.db.lifecycle import JobDefinition

    user, project = member
    run_id = await factory.run(project, user, jobs=[JobDefinition(f"j{i}") for i in range(3)])
    claims = await claim(gql, user.token, 3)
    messages = ["ok", "stderr: \x00 core dumped \ud83d", "fine"]
    items = [completion(c, message=m) for c, m in zip(claims, messages, strict=True)]
    body = await post(http, COMPLETE, {"input": {"completions": items}}, user.token)
    results = body["data"]["completeJobs"]["results"]
    assert [r["error"] for r in results] == [None, None, None]
    stored = {str(job.id): job.termination_message for job in await job_rows(db, run_id)}
    assert stored[claims[1]["job"]["id"]] == "stderr: \ufffd core dumped \ufffd"
    assert [r["job"]["status"] for r in results] == ["DONE", "DONE", "DONE"]


@pytest.mark.parametrize(
    "bad_lease",
    [
        lambda c: {"jobId": "²", "claimToken": c["claimToken"]},
        lambda c: {"jobId": c["job"]["id"], "claimToken": SURROGATE},
        lambda c: {"jobId": c["job"]["id"], "claimToken": NUL},
    ],
    ids=["superscript-id", "surrogate-token", "nul-token"],
)
async def test_renew_leases_answers_a_bad_item_alone(
    http: httpx.AsyncClient,
    gql: Any,
    factory: Factory,
    member: tuple[UserHandle, ProjectHandle],
    bad_lease: Any,
) -> None:
    from runql.db.lifecycle import JobDefinition

    user, project = member
    await factory.run(project, user, jobs=[JobDefinition("a"), JobDefinition("b")])
    claims = await claim(gql, user.token, 2)
    leases = [{"jobId": claims[0]["job"]["id"], "claimToken": claims[0]["claimToken"]}]
    leases.append(bad_lease(claims[1]))
    body = await post(http, RENEW, {"input": {"leases": leases}}, user.token)
    results = body["data"]["renewLeases"]["results"]
    assert results[0]["error"] is None
    assert results[1]["error"]["code"] == "BAD_USER_INPUT"
    assert results[1]["error"]["message"].startswith("leases[1].")


# --- JSON depth, times, page sizes -----------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    """A JSON object ``depth`` levels deep: ``{"a": {"a": ... {}}}``."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [33, 900])
async def test_spec_deeper_than_the_json_depth_limit_is_refused(
    http: httpx.AsyncClient,
    db: Database,
    member: tuple[UserHandle, ProjectHandle],
    depth: int,
) -> None:
    user, _ = member
    payload = await post(http, SUBMIT, {"input": _submit_input(spec=nested(depth))}, user.token)
    error = only_error(payload)
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == 32
    assert error["extensions"]["field"] == "spec" + ".a" * 32 + " (JSON depth)"
    assert await count_runs(db) == 0


async def test_spec_at_the_json_depth_limit_is_accepted(
    http: httpx.AsyncClient, member: tuple[UserHandle, ProjectHandle]
) -> None:
    user, _ = member
    payload = await post(http, SUBMIT, {"input": _submit_input(spec=nested(32))}, user.token)
    assert "errors" not in payload, payload["errors"]


async def test_json_depth_limit_is_a_setting(
    client_with: Any, member: tuple[UserHandle, ProjectHandle]
) -> None:
    user, _ = member
    async with client_with(max_json_depth=3) as http:
        payload = await post(
            http, SUBMIT, {"input": _submit_input(job={"spec": nested(4)})}, user.token
        )
    error = only_error(payload)
    assert error["extensions"]["limit"] == 3
    assert error["extensions"]["field"] == "jobs[0].spec.a.a.a (JSON depth)"


async def test_time_out_of_range_after_its_offset_is_bad_input(
    http: httpx.AsyncClient, member: tuple[UserHandle, ProjectHandle]
) -> None:
    user, _ = member
    variables = {"filter": {"submittedBefore": "0001-01-01T00:00:00+05:00"}}
    error = only_error(await post(http, RUNS, variables, user.token))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "filter.submittedBefore"}


@pytest.mark.parametrize("size", [{"first": 0}, {"first": -1}])
async def test_empty_or_negative_page_is_refused(
    http: httpx.AsyncClient, member: tuple[UserHandle, ProjectHandle], size: dict[str, int]
) -> None:
    user, _ = member
    error = only_error(await post(http, RUNS, size, user.token))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    assert "must be at least 1" in error["message"]
