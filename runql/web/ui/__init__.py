"""runql's reference web UI at ``/ui`` (routes: ``routes.py``; the GraphQL it sends:
``operations.py`` and ``operations/*.graphql``; the page itself: ``static/``)."""

from runql.web.ui.operations import all_operations
from runql.web.ui.routes import PATH, ui_routes

__all__ = ["PATH", "all_operations", "ui_routes"]
