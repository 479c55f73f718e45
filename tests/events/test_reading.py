"""``read_events``: visibility checked now, filters, pages, one statement."""

from __future__ import annotations

from sqlalchemy import delete

from runql.db.engine import Database, record_statements
from runql.db.enums import EventKind, MemberRole
from runql.db.events import START, EventPosition, EventRow, read_events
from runql.db.models import Member
from runql.db.visibility import Viewer
from tests.events.helpers import ADMIN, positions, settled
from tests.factories import Factory, UserHandle


def _viewer(user: UserHandle) -> Viewer:
    return Viewer(user_id=user.id, name=user.name, is_admin=False)


async def _read(db: Database, viewer: Viewer, **kwargs: object) -> list[EventRow]:
    kwargs.setdefault("after", START)
    kwargs.setdefault("limit", 100)
    async with db.read() as session:
        return await read_events(session, viewer, **kwargs)  # type: ignore[arg-type]


async def test_members_see_their_projects_admins_all_others_nothing(
    db: Database, factory: Factory
) -> None:
    alice, bob, carol = await factory.user("alice"), await factory.user("bob"), await factory.user()
    vision = await factory.project("vision", [(alice, MemberRole.USER)])
    speech = await factory.project("speech", [(bob, MemberRole.USER)])
    seen_by_alice = await factory.run(vision, alice)
    seen_by_bob = await factory.run(speech, bob)
    await settled(db)

    assert [e.run_id for e in await _read(db, _viewer(alice))] == [seen_by_alice]
    assert [e.run_id for e in await _read(db, _viewer(bob))] == [seen_by_bob]
    assert await _read(db, _viewer(carol)) == []
    assert [e.run_id for e in await _read(db, ADMIN)] == [seen_by_alice, seen_by_bob]


async def test_removal_from_a_project_stops_its_events_at_once(
    db: Database, factory: Factory
) -> None:
    alice, vision = await factory.user_in_project()
    await factory.run(vision, alice)
    await settled(db)
    [first] = await _read(db, _viewer(alice))
    await factory.run(vision, alice)
    await settled(db)
    assert len(await _read(db, _viewer(alice), after=first.position)) == 1
    async with db.write() as session:
        await session.execute(delete(Member).where(Member.user_id == alice.id))

    assert await _read(db, _viewer(alice), after=START) == []
    assert await _read(db, _viewer(alice), after=first.position) == []


async def test_filters_by_projects_and_runs(db: Database, factory: Factory) -> None:
    alice, vision = await factory.user_in_project()
    speech = await factory.project("speech", [(alice, MemberRole.USER)])
    runs = [await factory.run(project, alice) for project in (vision, speech, vision, speech)]
    await settled(db)

    def run_ids(events: list[EventRow]) -> list[int]:
        return [e.run_id for e in events]

    assert run_ids(await _read(db, _viewer(alice), project_ids=[speech.id])) == runs[1::2]
    assert run_ids(await _read(db, _viewer(alice), run_ids=[runs[2], runs[1]])) == runs[1:3]
    both = await _read(db, _viewer(alice), project_ids=[vision.id], run_ids=runs[1:])
    assert run_ids(both) == [runs[2]]
    assert await _read(db, _viewer(alice), project_ids=[]) == []
    # Long lists are bound as one parameter (runql.db.key_lists), not one per id.
    many = list(range(1, 40_000))
    assert run_ids(await _read(db, _viewer(alice), run_ids=many)) == runs


async def test_pages_follow_the_cursor_in_one_statement_each(
    db: Database, factory: Factory
) -> None:
    alice, vision = await factory.user_in_project()
    for _ in range(5):
        await factory.run(vision, alice)
    await settled(db)
    everything = await positions(db)

    seen: list[EventPosition] = []
    after = START
    with record_statements() as recorder:
        while page := await _read(db, _viewer(alice), after=after, limit=2):
            assert len(page) <= 2
            seen += [e.position for e in page]
            after = page[-1].position
    assert seen == everything
    assert recorder.count == 4  # three pages and the empty read
    assert {e.kind for e in await _read(db, ADMIN)} == {EventKind.RUN_SUBMITTED}
