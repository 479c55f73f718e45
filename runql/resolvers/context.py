"""The per-request context every resolver receives as ``info.context``.

One per HTTP request and one per operation on a WebSocket (see ``runql.web.websocket``): the
loaders cache what a request read and the viewer is who it was, so neither may outlive it.
Both transports build it with :func:`operation_context`, so every operation, whichever way
it came, has its token checked when it starts, empty loaders, and the server's settings
(its limits) as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runql.db.engine import Database
from runql.db.visibility import Viewer
from runql.resolvers.auth import authenticate
from runql.resolvers.errors import SettingExceeded, Unauthenticated
from runql.resolvers.loaders import Loaders
from runql.settings import Settings
from runql.tasks.event_listener import EventListener

SUBSCRIPTIONS_SETTING = "RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION"


@dataclass
class SocketState:
    """What the operations of one WebSocket share: the places its subscriptions hold
    (``RUNQL_MAX_SUBSCRIPTIONS_PER_CONNECTION``).

    An operation takes a place when its message arrives (``runql.web.websocket``), before
    anyone knows whether it is a subscription, so a burst of subscriptions sent at once
    is counted as it arrives, not as each gets round to running. It gives the place back
    when it ends, or as soon as it is known to be a query or mutation
    (``runql.schema.extensions.transport``)."""

    held: int = 0

    def take_place(self, limit: int) -> Place:
        """A place for one more operation; ``LIMIT_EXCEEDED`` naming the setting when
        ``limit`` are held."""
        if self.held >= limit:
            raise SettingExceeded(
                f"at most {limit} subscriptions may be open on one connection",
                SUBSCRIPTIONS_SETTING,
                limit,
            )
        self.held += 1
        return Place(self)


@dataclass(eq=False)
class Place:
    """One operation's place on its socket (:meth:`SocketState.take_place`)."""

    socket: SocketState
    held: bool = True

    def release(self) -> None:
        """Give the place back (once; later calls do nothing)."""
        if self.held:
            self.held = False
            self.socket.held -= 1


@dataclass
class Context:
    db: Database
    settings: Settings
    viewer_or_none: Viewer | None
    request_id: str = ""
    request: Any = None
    response: Any = None
    #: WebSocket only: the ``connection_init`` payload (strawberry's name for it).
    connection_params: dict[str, Any] | None = None
    #: The process's event listener (subscriptions register with it).
    events: EventListener | None = None
    #: WebSocket only: state shared by the socket's operations.
    socket: SocketState | None = None
    #: WebSocket only: this operation's place among the socket's subscriptions.
    place: Place | None = None
    #: Jobs this operation made claimable (retries, unblocked jobs): a ``claimJobs``
    #: later in the same document (a runner's cycle) skips its "anything ready?" read.
    made_ready: int = 0
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def viewer(self) -> Viewer:
        """The authenticated caller; raises ``UNAUTHENTICATED`` when there is none."""
        if self.viewer_or_none is None:
            raise Unauthenticated()
        return self.viewer_or_none

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.db, self.viewer)
        return self._loaders

    def forget_loaded(self) -> None:
        """Drop what the loaders cached: a subscription shows each batch of events with
        the state of its runs and jobs when the batch is sent, not when it started."""
        self._loaders = None


async def operation_context(
    db: Database,
    settings: Settings,
    *,
    authorization: str | None,
    request_id: str,
    request: Any,
    response: Any,
    events: EventListener | None,
    connection_params: dict[str, Any] | None = None,
    socket: SocketState | None = None,
    place: Place | None = None,
) -> Context:
    """The context of one operation: an HTTP request, or one operation on a WebSocket
    (``socket`` and ``connection_params`` are the connection's, shared by its operations).
    ``authorization`` (an ``Authorization`` value, or ``None``) is checked now: a token
    revoked, or a membership removed, since the socket opened counts from its next
    operation on. A missing or invalid token is no error here: the fields that need a
    viewer answer ``UNAUTHENTICATED``."""
    viewer = await authenticate(db, authorization)
    return Context(
        db=db,
        settings=settings,
        viewer_or_none=viewer,
        request_id=request_id,
        request=request,
        response=response,
        connection_params=connection_params,
        events=events,
        socket=socket,
        place=place,
    )
