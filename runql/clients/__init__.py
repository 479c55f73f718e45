"""Clients of the API over HTTP (runner, ps, stop): nothing of the server but error codes."""
