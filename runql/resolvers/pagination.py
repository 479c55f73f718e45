"""Opaque cursors: the keyset cursors of the lists, and the event cursors that resume a
``runEvents`` subscription (an event's ``cursor``, a runs page's ``eventCursor``).

A cursor is base64url JSON ``{"k": kind, "v": position}`` followed by an HMAC tag, so a
client cannot forge positions or pass a runs cursor to another list; both get a clear
error instead of a wrong page.

An event cursor must also point into *this* log: one older than the retention (the
events after it were pruned) or ahead of the log (signed with the same key, but taken on
another database, or before the database was restored from a backup) would resume with
a silent gap, so both answer ``CURSOR_EXPIRED``: list again, subscribe with the new
list's ``eventCursor``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from runql.db import events as event_log
from runql.db.events import EventPosition
from runql.error_codes import ErrorCode
from runql.resolvers.context import Context
from runql.resolvers.errors import BadInput, ClientError, LimitExceeded

_TAG_BYTES = 16
T = TypeVar("T")


def encode_cursor(secret: str, kind: str, value: list[Any]) -> str:
    payload = json.dumps({"k": kind, "v": value}, separators=(",", ":")).encode()
    tag = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")


def decode_cursor(secret: str, kind: str, cursor: str, *, argument: str) -> list[Any]:
    """Return the position in ``cursor`` or raise ``BadInput`` naming ``argument``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise BadInput(argument, "not a valid cursor") from None
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_TAG_BYTES]
    if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, expected):
        raise BadInput(argument, "not a valid cursor (tampered or from another server)")
    data = json.loads(payload)
    if data.get("k") != kind or not isinstance(data.get("v"), list):
        raise BadInput(argument, f"this cursor does not belong to the {kind} list")
    return list(data["v"])


def page_size(
    first: int | None, last: int | None, *, maximum: int, default: int
) -> tuple[int, bool]:
    """Validate ``first``/``last``; returns (size, backwards).

    Zero is refused like a negative size: an empty page has no end cursor to continue
    from, so ``hasNextPage`` could only mislead (a client would ask for the same page
    again, forever)."""
    if first is not None and last is not None:
        raise BadInput("first", "pass either first or last, not both")
    for name, value in (("first", first), ("last", last)):
        if value is not None:
            if value < 1:
                raise BadInput(name, f"must be at least 1 (got {value})")
            if value > maximum:
                raise LimitExceeded(name, maximum, value)
    if last is not None:
        return last, True
    return (first if first is not None else default), False


@dataclass(frozen=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@dataclass(frozen=True)
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True)
class Page(Generic[T]):
    """What a connection field returns; the schema's ``Connection`` types read it."""

    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def build(
        cls,
        nodes: list[T],
        cursor_of: Callable[[T], str],
        *,
        has_next_page: bool,
        has_previous_page: bool,
    ) -> Page[T]:
        edges = [Edge(cursor=cursor_of(node), node=node) for node in nodes]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next_page,
                has_previous_page=has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@dataclass(frozen=True)
class WatchedPage(Page[T], Generic[T]):
    """A page with the position to watch its list from (``RunConnection.eventCursor``)."""

    event_cursor: str = ""

    @classmethod
    def of(cls, page: Page[T], event_cursor: str) -> WatchedPage[T]:
        return cls(edges=page.edges, page_info=page.page_info, event_cursor=event_cursor)


# --- event cursors -----------------------------------------------------------------------

EVENTS_KIND = "events"


class CursorExpired(ClientError):
    """The events after an event cursor are not all in the log: resuming would skip some."""

    code = ErrorCode.CURSOR_EXPIRED

    def __init__(self, why: str) -> None:
        super().__init__(
            f"after: {why}; list again and subscribe with the list's eventCursor",
            field="after",
        )

    @classmethod
    def pruned(cls) -> CursorExpired:
        return cls("events after this cursor were pruned (RUNQL_EVENT_RETENTION_HOURS)")

    @classmethod
    def ahead(cls) -> CursorExpired:
        return cls(
            "this cursor is ahead of the event log (taken on another database, or before "
            "the database was restored from a backup)"
        )


def encode_event_cursor(ctx: Context, position: EventPosition) -> str:
    return encode_cursor(ctx.settings.secret_key, EVENTS_KIND, [position.txid, position.id])


def decode_event_cursor(ctx: Context, cursor: str, argument: str) -> EventPosition:
    value = decode_cursor(ctx.settings.secret_key, EVENTS_KIND, cursor, argument=argument)
    try:
        txid, event_id = value
        if not (isinstance(txid, int) and isinstance(event_id, int)):
            raise TypeError
        return EventPosition(txid, event_id)
    except (TypeError, ValueError):
        raise BadInput(argument, "not a valid cursor") from None


async def list_event_cursor(ctx: Context, session: AsyncSession) -> str:
    """The ``eventCursor`` of a list: take it before reading the list's page, in the
    same session, so subscribing with it gives every change the page may not show."""
    return encode_event_cursor(ctx, await event_log.safe_position(session))


async def check_resumable(session: AsyncSession, after: EventPosition) -> None:
    """Raises ``CURSOR_EXPIRED`` unless every event after ``after`` is still to be read
    from the log: not below the prune watermark, not past the log's end. One statement."""
    bounds = await event_log.log_bounds(session)
    if bounds.oldest_retained is not None and after < bounds.oldest_retained:
        raise CursorExpired.pruned()
    if after > bounds.newest:
        raise CursorExpired.ahead()


async def check_not_pruned(session: AsyncSession, after: EventPosition) -> None:
    """Raises ``CURSOR_EXPIRED`` when events after ``after`` were pruned."""
    watermark = await event_log.oldest_retained(session)
    if watermark is not None and after < watermark:
        raise CursorExpired.pruned()
