"""Payload types shared by the bulk mutations."""

from __future__ import annotations

import strawberry


@strawberry.type(
    description=(
        "Why one item of a bulk call was not applied. Codes: NOT_FOUND, FORBIDDEN, "
        "ALREADY_FINISHED, NOT_FINISHED (runs); STALE_CLAIM, INVALID_STATE (runner "
        "batches); BAD_USER_INPUT, LIMIT_EXCEEDED (a bad item)."
    )
)
class ItemError:
    code: str = strawberry.field(description="Stable machine-readable code.")
    message: str = strawberry.field(description="Human-readable explanation.")
