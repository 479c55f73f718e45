"""The per-request context every resolver receives as ``info.context``.

One per HTTP request and one per operation on a WebSocket (see ``runql.websocket``): the
loaders cache what a request read and the viewer is who it was, so neither may outlive it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runql.db.engine import Database
from runql.db.visibility import Viewer
from runql.resolvers.errors import Unauthenticated
from runql.resolvers.loaders import Loaders
from runql.settings import Settings


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
