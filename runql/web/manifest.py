"""Trusted documents: the manifest a client build ships, read once at start-up.

Two formats, the ones client tooling writes:

* Apollo's persisted query manifest (``generate-persisted-query-manifest``):
  ``{"format": "apollo-persisted-query-manifest", "version": 1,
  "operations": [{"id", "name", "type", "body"}]}``;
* a plain ``{id: body}`` map, as GraphQL Code Generator's client preset writes
  (``persisted-documents.json``).

A manifest that cannot be used is refused whole, with a message naming the file and the
entry at fault (:class:`ManifestError`): a server that silently trusted half a manifest
would refuse the other half's clients at run time instead of at deploy time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

APOLLO_FORMAT = "apollo-persisted-query-manifest"
SETTING = "RUNQL_TRUSTED_DOCUMENTS"


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class TrustedDocuments:
    """The documents a manifest lists: by id, and the set of their exact texts."""

    path: str
    by_id: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)  # id -> operation name, when known
    texts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, path: str, by_id: dict[str, str], names: dict[str, str]) -> TrustedDocuments:
        return cls(path=path, by_id=by_id, names=names, texts=frozenset(by_id.values()))

    def describe(self, document_id: str) -> str:
        name = self.names.get(document_id)
        return f"{document_id} ({name})" if name else document_id


def load_manifest(path: str | Path, *, label: str | None = None) -> TrustedDocuments:
    """The trusted documents of the manifest at ``path``; :class:`ManifestError` when the
    file is missing, not JSON, in neither format, or lists no document. Messages start
    with ``label`` (default: ``RUNQL_TRUSTED_DOCUMENTS=<path>``)."""
    where = label or f"{SETTING}={path}"
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(f"{where}: cannot read the manifest: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, not UTF-8, too deep
        raise ManifestError(f"{where}: not a JSON manifest: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: the manifest must be a JSON object")
    if "format" in data:
        by_id, names = _apollo(data, where)
    else:
        by_id, names = _plain_map(data, where), {}
    if not by_id:
        raise ManifestError(f"{where}: the manifest lists no document")
    return TrustedDocuments.of(str(path), by_id, names)


def _apollo(data: dict[str, object], where: str) -> tuple[dict[str, str], dict[str, str]]:
    if data.get("format") != APOLLO_FORMAT:
        raise ManifestError(
            f"{where}: unknown format {data.get('format')!r} (expected {APOLLO_FORMAT!r})"
        )
    if data.get("version") != 1:
        raise ManifestError(
            f"{where}: unsupported manifest version {data.get('version')!r} (expected 1)"
        )
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f"{where}: `operations` must be a list")
    by_id: dict[str, str] = {}
    names: dict[str, str] = {}
    for index, operation in enumerate(operations):
        entry = f"{where}: operations[{index}]"
        if not isinstance(operation, dict):
            raise ManifestError(f"{entry} must be an object")
        for key in ("id", "body"):
            if not isinstance(operation.get(key), str) or not operation[key]:
                raise ManifestError(f"{entry}: `{key}` must be a non-empty string")
        _add(by_id, operation["id"], operation["body"], entry)
        if isinstance(operation.get("name"), str):
            names[operation["id"]] = operation["name"]
    return by_id, names


def _plain_map(data: dict[str, object], where: str) -> dict[str, str]:
    by_id: dict[str, str] = {}
    for document_id, body in data.items():
        if not isinstance(body, str) or not body:
            raise ManifestError(
                f"{where}: the document of id {document_id!r} must be a non-empty string"
            )
        _add(by_id, document_id, body, f"{where}: id {document_id!r}")
    return by_id


def _add(by_id: dict[str, str], document_id: str, body: str, entry: str) -> None:
    if by_id.get(document_id, body) != body:
        raise ManifestError(f"{entry}: id {document_id!r} is listed twice with different bodies")
    by_id[document_id] = body


__all__ = ["APOLLO_FORMAT", "ManifestError", "TrustedDocuments", "load_manifest"]
