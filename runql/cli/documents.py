"""``runql documents check MANIFEST``: does every trusted document still fit the schema?

Run it in the deploy pipeline with the schema about to ship: a field removed or renamed
under a client that is still out there names that client's documents and exits 1, before
the server refuses them at run time. Each document is parsed and validated as a request
would be: graphql-core's rules against the schema ``runql export-schema`` prints, and the
document limits of the environment's settings (``RUNQL_MAX_TOKENS``,
``RUNQL_MAX_QUERY_DEPTH``, ``RUNQL_MAX_ALIASES``, ``RUNQL_INTROSPECTION``).
"""

from __future__ import annotations

import sys
from typing import TextIO

from graphql import GraphQLError, parse, specified_rules, validate

from runql.schema import build_schema
from runql.schema.extensions.limits import validation_rules
from runql.settings import Settings
from runql.web.manifest import ManifestError, TrustedDocuments, load_manifest


def broken_documents(trusted: TrustedDocuments, settings: Settings) -> dict[str, list[str]]:
    """Each document that does not parse or validate, by id, with its errors' messages."""
    schema = build_schema(settings)._schema
    rules = [*specified_rules, *validation_rules(settings)]
    broken: dict[str, list[str]] = {}
    for document_id, body in trusted.by_id.items():
        try:
            errors = validate(schema, parse(body, max_tokens=settings.max_tokens), rules)
        except GraphQLError as exc:
            errors = [exc]
        if errors:
            broken[document_id] = [error.message for error in errors]
    return broken


def check(path: str, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Prints each broken document with its errors; 0 when none is broken, else 1."""
    try:
        trusted = load_manifest(path, label=path)
    except ManifestError as exc:
        print(f"runql documents check: {exc}", file=sys.stderr)
        return 1
    broken = broken_documents(trusted, settings)
    for document_id, messages in broken.items():
        print(f"BROKEN {trusted.describe(document_id)}:", file=out)
        for message in messages:
            print(f"  {message}", file=out)
    total = len(trusted.by_id)
    if broken:
        print(f"{len(broken)} of {total} documents in {path} do not fit the schema", file=out)
        return 1
    print(f"all {total} documents in {path} fit the schema", file=out)
    return 0


__all__ = ["broken_documents", "check"]
