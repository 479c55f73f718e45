"""The functions behind fields and mutations: they talk to ``runql.db``, never to HTTP."""
