"""One typed settings object, read from ``RUNQL_*`` environment variables.

Every knob the service has lives here so the README can document them in one table and
tests can build a ``Settings`` with exactly the values they need.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./runql.db"


LOG_FORMATS = ("json", "text")
#: ``RUNQL_METRICS``: these words, or a bearer token of at least this many characters.
METRICS_MODES = ("off", "open")
MIN_METRICS_TOKEN_LENGTH = 16

#: Limits that make no sense at 0 or below (0 would refuse every request).
POSITIVE_FIELDS = (
    "max_page_size",
    "max_query_depth",
    "max_aliases",
    "max_tokens",
    "max_batch_size",
    "max_stop_batch",
    "max_body_bytes",
    "max_jobs_per_run",
    "max_json_bytes",
    "max_json_depth",
    "max_query_cost",
    "max_subscriptions_per_connection",
    "max_event_backlog",
    "apq_cache_size",
)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Service configuration. Field names map to ``RUNQL_<NAME>`` in upper case."""

    database_url: str = DEFAULT_DATABASE_URL
    #: HMAC key for pagination cursors. Set it in production so cursors survive restarts
    #: and cannot be forged; the default is fine for a laptop.
    secret_key: str = "runql-dev-secret-change-me"
    host: str = "127.0.0.1"
    port: int = 8000
    #: Processes ``runql serve`` starts; 0: one per core (see ``worker_count``).
    workers: int = 0
    graphiql: bool = True
    ui: bool = True
    introspection: bool = True
    cors_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_format: str = "json"
    graphql_cache_size: int = 256
    # Limits: each produces an error naming the limit when exceeded.
    max_page_size: int = 100
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    max_batch_size: int = 1000
    max_stop_batch: int = 500
    max_body_bytes: int = 2_000_000
    max_jobs_per_run: int = 5000
    max_json_bytes: int = 256_000
    max_json_depth: int = 32
    max_query_cost: int = 50_000
    statement_timeout_ms: int = 10_000
    db_pool_size: int = 10
    # Runner leases.
    min_lease_seconds: int = 5
    max_lease_seconds: int = 3600
    lease_sweep_seconds: float = 5.0
    # Observability.
    metrics: str = "off"
    # Live updates (docs/live-updates.md).
    live_updates: bool = True
    ws_compression: bool = False
    max_subscriptions_per_connection: int = 20
    max_event_backlog: int = 1000
    event_retention_hours: float = 168.0
    event_prune_seconds: float = 600.0
    event_poll_seconds: float = 0.1
    # Persisted documents (docs/http.md).
    apq: bool = True
    apq_cache_size: int = 1000
    trusted_documents: str = ""
    trusted_documents_admin_bypass: bool = False

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"RUNQL_LOG_FORMAT: must be one of {', '.join(LOG_FORMATS)}")
        for name in POSITIVE_FIELDS:
            if getattr(self, name) < 1:
                raise ValueError(f"RUNQL_{name.upper()}: must be at least 1")
        if self.event_retention_hours <= 0:
            raise ValueError("RUNQL_EVENT_RETENTION_HOURS: must be more than 0")
        if self.event_poll_seconds <= 0:
            raise ValueError("RUNQL_EVENT_POLL_SECONDS: must be more than 0")
        if self.workers < 0:
            raise ValueError("RUNQL_WORKERS: must be at least 0 (0: one per core)")
        if self.metrics not in METRICS_MODES and (
            len(self.metrics) < MIN_METRICS_TOKEN_LENGTH
            or not self.metrics.isascii()
            or not self.metrics.isprintable()
            or " " in self.metrics
        ):
            raise ValueError(
                "RUNQL_METRICS: must be off, open, or a bearer token of at least "
                f"{MIN_METRICS_TOKEN_LENGTH} printable ASCII characters without spaces"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``RUNQL_*`` variables; ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"RUNQL_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f, raw)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def worker_count(self) -> int:
        """The processes ``runql serve`` runs: ``workers``, or one per core when it is 0."""
        return self.workers or os.cpu_count() or 1

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics != "off"

    @property
    def metrics_token(self) -> str | None:
        """The bearer token ``/metrics`` asks for; None when it is off or open."""
        return None if self.metrics in METRICS_MODES else self.metrics

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _parse(f: dataclasses.Field[object], raw: str) -> object:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            return _bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            return _list(raw)
    except ValueError as exc:
        raise ValueError(f"RUNQL_{f.name.upper()}: {exc}") from None
    return raw


#: One line per setting for docs/configuration.md (a test keeps both complete).
FIELD_DOCS: dict[str, str] = {
    "database_url": "SQLAlchemy URL: `sqlite+aiosqlite:///path.db` or "
    "`postgresql+asyncpg://user@host/db`.",
    "secret_key": "HMAC key of pagination cursors; set it in production so cursors survive "
    "restarts and cannot be forged.",
    "host": "Interface `runql serve` binds.",
    "port": "Port `runql serve` listens on.",
    "workers": "Processes `runql serve` starts (`--workers` wins); 0: one per core. They share "
    "the port, the database and `RUNQL_DB_POOL_SIZE`.",
    "graphiql": "Serve GraphiQL at `GET /graphql` for browsers.",
    "ui": "Serve the web UI (the runs page) at `GET /ui`; see docs/ui.md.",
    "introspection": "Answer `__schema`/`__type` queries (GraphiQL's docs pane needs it); "
    "federation's `_service { sdl }` works either way.",
    "cors_origins": "Comma-separated origins allowed to call the API from a browser "
    "(`*` for any); empty: no CORS headers.",
    "log_level": "Level of the `runql` loggers (DEBUG, INFO, WARNING, ERROR).",
    "log_format": "`json` (one object per line) or `text`.",
    "graphql_cache_size": "Parsed and validated documents kept per process (LRU).",
    "max_page_size": "Largest `first`/`last` of a paginated field.",
    "max_query_depth": "Deepest field nesting of a document (`{ me { name } }` is 2; "
    "introspection excluded).",
    "max_aliases": "Most aliased fields in a document (fragments counted where spread).",
    "max_tokens": "Most lexical tokens in a document; parsing stops beyond it.",
    "max_batch_size": "Most items in one runner batch (`claimJobs`, `completeJobs`, "
    "`renewLeases`).",
    "max_stop_batch": "Most runs in one `stopRuns`/`deleteRuns`/`restartRuns`.",
    "max_body_bytes": "Largest request body in bytes (413 beyond it).",
    "max_jobs_per_run": "Most jobs in one submitted run.",
    "max_json_bytes": "Largest JSON value (spec, result) in bytes.",
    "max_json_depth": "Deepest nesting of a JSON value (spec, result): `{}` is 1, "
    '`{"a": []}` is 2.',
    "max_query_cost": "Most objects a document may ask for, estimated before execution from "
    "its page sizes and list arguments (see docs/limits.md).",
    "statement_timeout_ms": "PostgreSQL `statement_timeout` of every connection, in ms "
    "(0: none); a slow statement answers `STATEMENT_TIMEOUT`.",
    "db_pool_size": "PostgreSQL connections `runql serve` keeps, shared out among its workers "
    "(each keeps its share, rounded up; as many again may overflow).",
    "min_lease_seconds": "Shortest lease a runner may ask for.",
    "max_lease_seconds": "Longest lease a runner may ask for.",
    "lease_sweep_seconds": "How often expired leases are requeued (0: no sweeper).",
    "metrics": "Who may read Prometheus metrics at `GET /metrics`: `off` (no endpoint, nothing "
    "counted), `open` (anyone who reaches the port), or a bearer token (16+ characters) "
    "scrapers send as `Authorization: Bearer <token>`. See docs/operations.md.",
    "live_updates": "Write the event log and serve subscriptions (`runEvents`, `jobsReady`). "
    "`false` saves the write path the log's statement per transaction (its cost is in "
    "bench/RESULTS.md); subscriptions then answer an error. See docs/live-updates.md.",
    "ws_compression": "Offer permessage-deflate on WebSockets. Off by default: events are a "
    "few hundred bytes, and compressing each message for each subscriber cost more CPU than "
    "it saved bytes (bench/RESULTS.md, scenario 11), plus zlib state per connection.",
    "max_subscriptions_per_connection": "Most subscriptions open at once on one WebSocket "
    "(`runEvents`, `jobsReady`), each counted from the moment it arrives; one more (or, "
    "while every place is taken, any operation) answers `LIMIT_EXCEEDED` naming this setting.",
    "max_event_backlog": "Most events queued for one subscription whose client does not keep "
    "up; beyond it the subscription ends with `LIMIT_EXCEEDED` (resume from the last cursor).",
    "event_retention_hours": "How long the event log keeps events; an older cursor answers "
    "`CURSOR_EXPIRED`.",
    "event_prune_seconds": "How often events older than the retention are deleted (0: never).",
    "event_poll_seconds": "How often a process checks the event log for new events on SQLite "
    "(PostgreSQL is woken by NOTIFY and re-checks at this interval only while an event "
    "it was told of is held back by an older transaction).",
    "apq": "Automatic persisted queries (Apollo's APQ protocol): a client may send "
    "`extensions.persistedQuery.sha256Hash` instead of the query once the server has seen "
    "it; `false` answers `PERSISTED_QUERY_NOT_SUPPORTED`. See docs/http.md.",
    "apq_cache_size": "Documents the APQ store of a process keeps (LRU, shared by every "
    "request of the process); a hash pushed out answers `PERSISTED_QUERY_NOT_FOUND` and "
    "the client sends the query again.",
    "trusted_documents": "Path of a persisted query manifest (Apollo's, or GraphQL Code "
    "Generator's `{id: body}` map): runql then runs only those documents, by id or by "
    "identical text. A bad manifest stops `runql serve` (exit 1). See docs/http.md.",
    "trusted_documents_admin_bypass": "With trusted documents: let ADMIN tokens run any "
    "document (GraphiQL, scripts); others stay held to the manifest.",
}


def settings_table() -> str:
    """The Markdown table of every ``RUNQL_*`` variable (docs/configuration.md)."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        if isinstance(shown, bool):
            shown = str(shown).lower()
        doc = FIELD_DOCS.get(f.name, "")
        cell = f"`{shown}`" if shown != "" else "(empty)"
        lines.append(f"| `RUNQL_{f.name.upper()}` | {cell} | {doc} |")
    return "\n".join(lines) + "\n"


__all__ = [
    "DEFAULT_DATABASE_URL",
    "FIELD_DOCS",
    "Settings",
    "settings_table",
]
