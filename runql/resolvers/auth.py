"""Authentication: ``Authorization: Bearer <token>`` to a :class:`Viewer`."""

from __future__ import annotations

from runql.db.accounts import viewer_for_token
from runql.db.engine import Database
from runql.db.visibility import Viewer


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(db: Database, authorization: str | None) -> Viewer | None:
    """The viewer for an ``Authorization`` header value, or None (missing/unknown token).

    One indexed lookup on the token hash per request.
    """
    token = bearer_token(authorization)
    if token is None:
        return None
    async with db.read() as session:
        return await viewer_for_token(session, token)
