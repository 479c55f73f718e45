"""Input types of queries (mutation inputs live beside their mutations)."""

from __future__ import annotations

import datetime as dt

import strawberry

from runql.resolvers.runs import RunFilter
from runql.schema.enums import RunStatus


@strawberry.input(
    name="RunFilter", description="Narrow the runs list. All given conditions must hold."
)
class RunFilterInput:
    statuses: list[RunStatus] | None = strawberry.field(
        default=None, description="Only runs in one of these statuses."
    )
    only_active: bool = strawberry.field(
        default=False, description="Only runs not yet TERMINATED, FAILED or DONE."
    )
    user_name: str | None = strawberry.field(default=None, description="Only runs of this user.")
    submitted_after: dt.datetime | None = strawberry.field(
        default=None, description="Only runs submitted at or after this time (no offset: UTC)."
    )
    submitted_before: dt.datetime | None = strawberry.field(
        default=None, description="Only runs submitted before this time (no offset: UTC)."
    )
    name_contains: str | None = strawberry.field(
        default=None, description="Only runs whose name contains this text (case as stored)."
    )

    def to_data(self) -> RunFilter:
        return RunFilter(
            statuses=tuple(self.statuses or ()),
            only_active=self.only_active,
            user_name=self.user_name,
            submitted_after=self.submitted_after,
            submitted_before=self.submitted_before,
            name_contains=self.name_contains,
        )
