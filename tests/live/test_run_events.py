"""``runEvents`` over a real WebSocket: a run's life in order, resuming from a cursor
with no gap and no duplicate, expired cursors, visibility, list-then-watch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete

from runql.db import events as event_log
from runql.db.engine import Database
from runql.db.enums import MemberRole
from runql.db.models import Event, Member
from runql.settings import Settings
from tests.factories import Factory, GraphQLClient
from tests.inloop import Served, serving
from tests.live.helpers import (
    CLAIM,
    COMPLETE,
    RUN_EVENTS,
    STOP,
    SUBMIT,
    caught_up,
    log_of,
    seen,
    submit_input,
)
from tests.waiting import until
from tests.wsclient import socket

LIST = '{ runs(project: "vision") { eventCursor edges { node { name } } } }'
FLAKY = {"name": "train", "retry": {"limit": 1, "onFailure": True}}


async def _claim_one(server: Served, token: str) -> dict[str, Any]:
    data = await server.gql(token, CLAIM, {"input": {"runnerName": "r", "limit": 1}})
    (claim,) = data["claimJobs"]["claims"]
    return dict(claim)


async def _complete(server: Served, token: str, claim: dict[str, Any], status: str) -> None:
    item = {"jobId": claim["job"]["id"], "claimToken": claim["claimToken"], "status": status}
    data = await server.gql(token, COMPLETE, {"input": {"completions": [item]}})
    assert data["completeJobs"]["results"][0]["error"] is None


async def _life_of_a_run(server: Served, token: str) -> int:
    """submit -> claim -> fail (retried) -> claim -> done; returns the run id."""
    data = await server.gql(token, SUBMIT, submit_input("vision", FLAKY))
    run_id = int(data["submitRun"]["run"]["id"])
    await _complete(server, token, await _claim_one(server, token), "FAILED")
    await _complete(server, token, await _claim_one(server, token), "DONE")
    return run_id


async def test_a_run_s_life_arrives_in_order(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server, socket(server.ws_url, alice.token) as ws:
        op = await ws.subscribe(RUN_EVENTS, {"project": "vision"})
        await ws.nothing(op, 0.2)  # subscribed: nothing happened yet
        run_id = await _life_of_a_run(server, alice.token)
        log = await log_of(db)
        got = await ws.events(op, len(log))
        await ws.nothing(op, 0.3)
    assert seen(got) == log
    kinds = [kind for kind, _, _ in log]
    life = ["RUN_SUBMITTED", "JOB_CLAIMED", "JOB_COMPLETED", "JOB_RETRIED"]
    life += ["JOB_CLAIMED", "JOB_COMPLETED"]
    assert [k for k in kinds if k in life] == life
    assert kinds[-1] == "RUN_STATUS_CHANGED"  # to DONE
    assert all(e["run"]["id"] == str(run_id) for e in got)
    assert got[-1]["run"]["status"] == "DONE"  # current state, whatever the event
    cursors = [e["cursor"] for e in got]
    assert len(set(cursors)) == len(cursors)


async def test_resuming_from_a_cursor_gives_exactly_the_missed_events_then_live_ones(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server:
        async with socket(server.ws_url, alice.token) as ws:
            op = await ws.subscribe(RUN_EVENTS, {"project": "vision"})
            await ws.nothing(op, 0.2)
            await server.gql(alice.token, SUBMIT, submit_input("vision", name="first"))
            before = await log_of(db)
            delivered = await ws.events(op, len(before))
        # Disconnected: a run's whole life happens meanwhile.
        await _life_of_a_run(server, alice.token)
        missed = (await log_of(db))[len(before) :]
        assert missed
        async with socket(server.ws_url, alice.token) as ws:
            op = await ws.subscribe(RUN_EVENTS, {"after": delivered[-1]["cursor"]})
            replayed = await ws.events(op, len(missed))
            await ws.nothing(op, 0.3)  # no duplicate after the replay
            await server.gql(alice.token, SUBMIT, submit_input("vision", name="live"))
            live = (await log_of(db))[len(before) + len(missed) :]
            got_live = await ws.events(op, len(live))
            await ws.nothing(op, 0.3)
    assert seen(replayed) == missed
    assert seen(got_live) == live
    assert [kind for kind, _, _ in live] == ["RUN_SUBMITTED"]


async def test_replay_and_live_meet_without_gap_or_duplicate_while_writes_go_on(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """A subscriber resuming from the start while runs are being submitted: whichever
    of replay and live delivers an event, it arrives once, in log order."""
    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server:
        for i in range(5):
            await server.gql(alice.token, SUBMIT, submit_input("vision", name=f"old-{i}"))
        first = (await log_of(db))[0]
        start = await _cursor_before(db, settings)
        async with socket(server.ws_url, alice.token) as ws:
            op = await ws.subscribe(RUN_EVENTS, {"after": start})
            for i in range(5):
                await server.gql(alice.token, SUBMIT, submit_input("vision", name=f"new-{i}"))
            log = await log_of(db)
            got = await ws.events(op, len(log))
            await ws.nothing(op, 0.3)
    assert seen(got) == log
    assert seen(got)[0] == first


async def _cursor_before(db: Database, settings: Settings) -> str:
    """A cursor before every event (what a client resuming from the start holds)."""
    from runql.resolvers.context import Context
    from runql.resolvers.pagination import encode_event_cursor

    ctx = Context(db=db, settings=settings, viewer_or_none=None)
    return encode_event_cursor(ctx, event_log.START)


async def test_a_cursor_older_than_the_retention_answers_cursor_expired(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server, socket(server.ws_url, alice.token) as ws:
        op = await ws.subscribe(RUN_EVENTS, {"project": "vision"})
        await ws.nothing(op, 0.2)
        for i in range(3):
            await server.gql(alice.token, SUBMIT, submit_input("vision", name=f"r{i}"))
        cursors = [e["cursor"] for e in await ws.events(op, 3)]
        async with db.write() as session:  # everything older than a minute from now
            pruned = await event_log.prune_events(
                session, older_than=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
            )
        assert pruned == 3
        expired = await ws.subscribe(RUN_EVENTS, {"after": cursors[1]})
        assert await ws.error_codes(expired) == ["CURSOR_EXPIRED"]
        # The newest pruned event's cursor lost nothing: it resumes.
        fine = await ws.subscribe(RUN_EVENTS, {"after": cursors[2]})
        await ws.nothing(fine, 0.3)
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="after-prune"))
        assert (await ws.events(fine, 1))[0]["kind"] == "RUN_SUBMITTED"
        forged = await ws.subscribe(RUN_EVENTS, {"after": cursors[2][:-3] + "AAA"})
        assert await ws.error_codes(forged) == ["BAD_USER_INPUT"]


async def test_a_cursor_ahead_of_the_log_answers_cursor_expired(
    db: Database, settings: Settings, factory: Factory
) -> None:
    """A cursor signed with this server's key but past the end of its log (taken on
    another database, or before a restore) would skip every event up to it: refused,
    naming the reason, while the newest real cursor still resumes."""
    from runql.resolvers.context import Context
    from runql.resolvers.pagination import encode_event_cursor

    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server, socket(server.ws_url, alice.token) as ws:
        op = await ws.subscribe(RUN_EVENTS, {"project": "vision"})
        await ws.nothing(op, 0.2)
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="here"))
        [newest] = await ws.events(op, 1)
        async with db.read() as session:
            end = (await event_log.log_bounds(session)).newest
        if db.is_sqlite:  # ids further on than this log ever went
            ahead = event_log.EventPosition(0, end.id + 1000)
        else:  # a transaction id this cluster has not reached
            ahead = event_log.EventPosition(end.txid + 1000, 1)
        ctx = Context(db=db, settings=settings, viewer_or_none=None)
        refused = await ws.subscribe(RUN_EVENTS, {"after": encode_event_cursor(ctx, ahead)})
        message = await ws.message(refused)
        assert message["type"] in ("next", "error"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        [error] = errors
        assert error["extensions"]["code"] == "CURSOR_EXPIRED", error
        assert error["extensions"]["field"] == "after"
        assert "ahead of the event log" in error["message"]
        fine = await ws.subscribe(RUN_EVENTS, {"after": newest["cursor"]})
        await ws.nothing(fine, 0.3)
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="later"))
        assert (await ws.events(fine, 1))[0]["kind"] == "RUN_SUBMITTED"


async def test_events_follow_current_visibility(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    bob = await factory.user("bob")
    outsider = await factory.user("eve")
    project = await factory.project("audio", [(alice, MemberRole.USER), (bob, MemberRole.USER)])
    async with (
        serving(settings, db) as server,
        socket(server.ws_url, bob.token) as bob_ws,
        socket(server.ws_url, outsider.token) as eve_ws,
    ):
        bob_op = await bob_ws.subscribe(RUN_EVENTS)
        eve_op = await eve_ws.subscribe(RUN_EVENTS)
        named = await eve_ws.subscribe(RUN_EVENTS, {"project": "audio"})
        assert await eve_ws.error_codes(named) == ["NOT_FOUND"]
        await bob_ws.nothing(bob_op, 0.2)
        await server.gql(alice.token, SUBMIT, submit_input("audio", name="seen"))
        assert (await bob_ws.events(bob_op, 1))[0]["kind"] == "RUN_SUBMITTED"
        async with db.write() as session:
            await session.execute(
                delete(Member).where(Member.user_id == bob.id, Member.project_id == project.id)
            )
        data = await server.gql(alice.token, SUBMIT, submit_input("audio", name="unseen"))
        await server.gql(alice.token, STOP, {"id": data["submitRun"]["run"]["id"]})
        await bob_ws.nothing(bob_op, 0.6)
        await eve_ws.nothing(eve_op, 0.1)
        # Nor does a replay show what bob may no longer see.
        replay = await bob_ws.subscribe(RUN_EVENTS, {"after": await _cursor_before(db, settings)})
        await bob_ws.nothing(replay, 0.3)


async def test_list_then_watch_with_the_page_s_event_cursor(
    db: Database, settings: Settings, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    async with serving(settings, db) as server:
        await server.gql(alice.token, SUBMIT, submit_input("vision", name="listed"))
        page = await server.gql(alice.token, LIST)
        assert [e["node"]["name"] for e in page["runs"]["edges"]] == ["listed"]
        # Changes between the list and the subscription are not lost ...
        data = await server.gql(alice.token, SUBMIT, submit_input("vision", name="later"))
        later = int(data["submitRun"]["run"]["id"])
        log = await log_of(db)
        async with socket(server.ws_url, alice.token) as ws:
            op = await ws.subscribe(RUN_EVENTS, {"after": page["runs"]["eventCursor"]})
            got = [(await ws.next(op))["runEvents"]]
            while int(got[-1]["run"]["id"]) != later:
                got.append((await ws.next(op))["runEvents"])
            await ws.nothing(op, 0.3)
    assert seen(got)[-1] == ("RUN_SUBMITTED", later, None)
    if db.is_sqlite:  # exact: what the page showed is not sent again
        assert len(got) == 1
    else:
        # At least once at the boundary: a transaction that committed while an older
        # one (anywhere in the cluster) was in flight may come again. In order, no gap.
        assert seen(got) == log[-len(got) :]


async def test_a_batch_of_events_costs_a_fixed_number_of_statements(
    db: Database, settings: Settings, factory: Factory, caplog: Any
) -> None:
    """Replaying the events of 1 run and of 40 runs (submitted, claimed: with their jobs)
    costs the same statements: the token, the retention check, then per batch the read,
    the retention check again, the runs and the jobs."""
    alice, _ = await factory.user_in_project()
    counts = []
    async with serving(settings, db) as server:
        start = await _cursor_before(db, settings)
        for size in (1, 40):
            await _reset_log(db)
            for i in range(size):
                await server.gql(alice.token, SUBMIT, submit_input("vision", name=f"n{size}-{i}"))
            claim = {"input": {"runnerName": "r", "limit": size}}
            await server.gql(alice.token, CLAIM, claim)
            log = await log_of(db)
            await caught_up(server, db)  # so that all of it is one replay batch
            caplog.clear()
            async with socket(server.ws_url, alice.token) as ws:
                op = await ws.subscribe(RUN_EVENTS, {"after": start})
                assert seen(await ws.events(op, len(log))) == log
                await ws.complete(op)
                await _until_logged(caplog)
            counts.append(_ws_statements(caplog))
    assert counts == [6, 6], counts


async def _reset_log(db: Database) -> None:
    async with db.write() as session:
        await session.execute(delete(Event))


async def _until_logged(caplog: Any) -> None:
    await until(
        lambda: any(getattr(r, "method", None) == "WS" for r in caplog.records),
        "the subscription's log line",
    )


def _ws_statements(caplog: Any) -> int:
    (record,) = [r for r in caplog.records if getattr(r, "method", None) == "WS"]
    return int(record.sql_statements)


async def test_a_subscription_over_http_is_refused_clearly(
    gql: GraphQLClient, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    for document in (RUN_EVENTS, "subscription { jobsReady { ready } }"):
        body = await gql(document, token=alice.token, expect_errors=True)
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert "WebSocket" in error["message"]


async def test_the_event_cursor_costs_one_statement_and_only_when_asked(
    gql: GraphQLClient, factory: Factory
) -> None:
    alice, _ = await factory.user_in_project()
    plain = '{ runs(project: "vision") { edges { node { name } } } }'
    fragment = "fragment W on RunConnection { eventCursor }"
    watched = '{ runs(project: "vision") { ...W edges { node { name } } } } ' + fragment
    _, without = await gql.counted(plain, token=alice.token)
    body, with_cursor = await gql.counted(watched, token=alice.token)
    assert with_cursor.count == without.count + 1, with_cursor.statements
    assert body["data"]["runs"]["eventCursor"]
