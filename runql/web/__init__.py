"""Serving: the Starlette app, GraphQL over HTTP and WebSockets, workers, GraphiQL."""
