"""The ``runql`` command: server commands and the API clients' sub-commands."""
