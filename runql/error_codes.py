"""Every error code runql answers, each declared once with its meaning.

A code is what a client branches on: ``extensions.code`` of a top-level GraphQL error, or
``error.code`` of one item of a bulk payload (``stopRuns``, ``completeJobs`` ...). Every
layer names codes through :class:`ErrorCode` (the database layer's refusals included), so a
code cannot drift between the layer that decides it and the one that shows it. The
schema's ``ItemError.code`` description and docs/errors.md are rendered from
:data:`MEANINGS`; a test keeps the doc in step.

This module imports nothing of runql: every layer may use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorCode(enum.StrEnum):
    # The request as a whole (top-level errors).
    UNAUTHENTICATED = "UNAUTHENTICATED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    STATEMENT_TIMEOUT = "STATEMENT_TIMEOUT"
    CURSOR_EXPIRED = "CURSOR_EXPIRED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    # Refused by HTTP before GraphQL runs.
    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    # Persisted documents: Apollo's automatic persisted queries and trusted documents
    # (docs/http.md); the codes are the ones Apollo's server and router answer.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_QUERY_VERSION_NOT_SUPPORTED = "PERSISTED_QUERY_VERSION_NOT_SUPPORTED"
    PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
    QUERY_NOT_IN_SAFELIST = "QUERY_NOT_IN_SAFELIST"
    # One field, or one item of a bulk call.
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    ALREADY_FINISHED = "ALREADY_FINISHED"
    NOT_FINISHED = "NOT_FINISHED"
    STALE_CLAIM = "STALE_CLAIM"
    INVALID_STATE = "INVALID_STATE"


@dataclass(frozen=True)
class Meaning:
    #: Where a client meets the code: ``request`` (a top-level error), ``http`` (an HTTP
    #: refusal with a GraphQL-shaped body), ``item`` (``error.code`` of a bulk payload's
    #: item), or both of the last two kinds as ``request, item``.
    where: str
    text: str


MEANINGS: dict[ErrorCode, Meaning] = {
    ErrorCode.UNAUTHENTICATED: Meaning(
        "request",
        "No API token, or one that is unknown or revoked (HTTP 401 with "
        "`application/graphql-response+json`).",
    ),
    ErrorCode.BAD_USER_INPUT: Meaning(
        "request, item",
        "A value is malformed: `extensions.field` (or the item's message) "
        "names it. Nothing was changed.",
    ),
    ErrorCode.LIMIT_EXCEEDED: Meaning(
        "request, item",
        "Over a configured limit: `extensions` carry `limit` and the field "
        "or the `RUNQL_*` setting (see limits.md).",
    ),
    ErrorCode.GRAPHQL_PARSE_FAILED: Meaning("request", "The document is not valid GraphQL."),
    ErrorCode.GRAPHQL_VALIDATION_FAILED: Meaning(
        "request", "The document does not fit the schema (unknown field, wrong argument type)."
    ),
    ErrorCode.STATEMENT_TIMEOUT: Meaning(
        "request", "A database statement ran past `RUNQL_STATEMENT_TIMEOUT_MS`; ask for less."
    ),
    ErrorCode.CURSOR_EXPIRED: Meaning(
        "request",
        "`runEvents(after:)`: resuming from this cursor would skip events, because the "
        "events after it were pruned (`RUNQL_EVENT_RETENTION_HOURS`) or it is ahead of the "
        "event log (taken on another database, or before a restore). List again and "
        "subscribe with the new list's `eventCursor`.",
    ),
    ErrorCode.INTERNAL_SERVER_ERROR: Meaning(
        "request", "A bug or an outage; `extensions.requestId` matches the server's log line."
    ),
    ErrorCode.BAD_REQUEST: Meaning(
        "http, request",
        "HTTP 400: the body is not a JSON object or cannot be decoded. As a field error: "
        "a subscription sent over HTTP (subscribe over a WebSocket).",
    ),
    ErrorCode.METHOD_NOT_ALLOWED: Meaning("http", "HTTP 405: a mutation sent over GET."),
    ErrorCode.NOT_ACCEPTABLE: Meaning(
        "http", "HTTP 406: `Accept` allows neither JSON media type runql answers in."
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: Meaning(
        "http", "HTTP 413: the body is larger than `RUNQL_MAX_BODY_BYTES`."
    ),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: Meaning(
        "http", "HTTP 415: the body is not `application/json` in UTF-8."
    ),
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: Meaning(
        "request",
        "`PersistedQueryNotFound`: the server does not know this `persistedQuery` hash "
        "(yet, or any more: the store is an LRU of `RUNQL_APQ_CACHE_SIZE`). Send the same "
        "request again with `query`; Apollo's persisted query link does. HTTP 200, not cached.",
    ),
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED: Meaning(
        "request",
        "`PersistedQueryNotSupported`: automatic persisted queries are off (`RUNQL_APQ=false`); "
        "send `query`. HTTP 200, not cached.",
    ),
    ErrorCode.PERSISTED_QUERY_HASH_MISMATCH: Meaning(
        "request",
        "The `persistedQuery` hash is missing or not the SHA-256 of `query` (or a trusted "
        "document's id came with another text). Nothing ran and nothing was stored.",
    ),
    ErrorCode.PERSISTED_QUERY_VERSION_NOT_SUPPORTED: Meaning(
        "request", "`extensions.persistedQuery.version` is not 1, the only version there is."
    ),
    ErrorCode.PERSISTED_QUERY_NOT_IN_LIST: Meaning(
        "request",
        "Trusted documents (`RUNQL_TRUSTED_DOCUMENTS`): no trusted document has this id "
        "(`documentId`, or `persistedQuery.sha256Hash`). HTTP 404 with "
        "`application/graphql-response+json`.",
    ),
    ErrorCode.QUERY_NOT_IN_SAFELIST: Meaning(
        "request",
        "Trusted documents (`RUNQL_TRUSTED_DOCUMENTS`): the `query` text is not one of the "
        "trusted documents, character for character; it was refused before parsing. HTTP 403 "
        "with `application/graphql-response+json`.",
    ),
    ErrorCode.NOT_FOUND: Meaning(
        "request, item",
        "No such object, or one in a project the caller is not a member of "
        "(the two are not told apart).",
    ),
    ErrorCode.FORBIDDEN: Meaning(
        "request, item",
        "The caller sees the object but may not do this to it (stop, restart or "
        "delete: the submitter, project admins and managers, and admins may).",
    ),
    ErrorCode.ALREADY_FINISHED: Meaning("item", "`stopRuns`: the run had already finished."),
    ErrorCode.NOT_FINISHED: Meaning(
        "item", "`deleteRuns`: the run is still active; stop it first."
    ),
    ErrorCode.STALE_CLAIM: Meaning(
        "item",
        "`renewLeases`/`completeJobs`: the claim token no longer holds the job (its "
        "lease expired and it was requeued, the run was restarted, or the job was aborted). "
        "Stop working on it; nothing was applied.",
    ),
    ErrorCode.INVALID_STATE: Meaning(
        "item",
        "`renewLeases`/`completeJobs`: the job already finished another way (e.g. "
        "a repeated completion that contradicts the first). `restartRuns`: the run is not "
        "finished (only DONE, FAILED and TERMINATED runs restart), or it is DONE and the "
        "scope is FAILED (nothing failed). Nothing was applied.",
    ),
}

#: The codes an item of a bulk payload can carry (``ItemError.code``).
ITEM_CODES: tuple[ErrorCode, ...] = tuple(
    code for code, meaning in MEANINGS.items() if "item" in meaning.where
)


def error_codes_table() -> str:
    """The Markdown table of every code (docs/errors.md)."""
    lines = ["| Code | Where | Meaning |", "| --- | --- | --- |"]
    for code in ErrorCode:
        meaning = MEANINGS[code]
        lines.append(f"| `{code}` | {meaning.where} | {meaning.text} |")
    return "\n".join(lines) + "\n"


__all__ = ["ITEM_CODES", "MEANINGS", "ErrorCode", "Meaning", "error_codes_table"]
