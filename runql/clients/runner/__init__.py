"""The reference runner, ``runql runner``: a client of the API over HTTP.

It claims ready jobs, runs each job's ``spec.cmd`` as a process group, renews the leases
of what runs, and reports every finished job through a journal that survives crashes
(docs/runner.md, "runql runner"). It imports nothing of ``runql.db``, ``runql.resolvers``
or ``runql.schema``: everything it knows of the server comes over HTTP (and WebSocket).

Modules: ``client`` (GraphQL over HTTP and the documents), ``live`` (subscriptions over
``graphql-transport-ws``), ``waker`` (the ``jobsReady`` thread that wakes an idle runner),
``spec`` (the ``Job.spec`` convention), ``process`` (process groups and their output),
``jobs`` (the running jobs: start, timeouts, kills, reaping), ``journal`` (completions not
yet acknowledged), ``idle`` (when to claim again after an empty claim), ``status`` (the TTY
status line and log lines), ``loop`` (the cycle) and ``command`` (the CLI entry).
"""
