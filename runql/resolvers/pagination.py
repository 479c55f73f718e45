"""Opaque keyset cursors.

A cursor is base64url JSON ``{"k": kind, "v": position}`` followed by an HMAC tag, so a
client cannot forge positions or pass a runs cursor to another list; both get a clear
error instead of a wrong page.
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

from runql.resolvers.errors import BadInput, LimitExceeded

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
