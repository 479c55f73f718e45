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
    graphiql: bool = True
    introspection: bool = True
    cors_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
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
    statement_timeout_ms: int = 10_000
    db_pool_size: int = 10
    # Runner leases.
    min_lease_seconds: int = 5
    max_lease_seconds: int = 3600
    lease_sweep_seconds: float = 5.0

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


def settings_field_docs() -> list[tuple[str, object]]:
    """(variable name, default) pairs, for the README table and ``runql --help``."""
    return [(f"RUNQL_{f.name.upper()}", f.default) for f in dataclasses.fields(Settings)]


__all__ = ["DEFAULT_DATABASE_URL", "Settings", "settings_field_docs"]
