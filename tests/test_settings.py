"""Settings come from RUNQL_* variables, are checked, and are all documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runql.settings import FIELD_DOCS, Settings, settings_table

DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


def test_from_env_parses_each_kind() -> None:
    env = {
        "RUNQL_PORT": "9000",
        "RUNQL_GRAPHIQL": "off",
        "RUNQL_INTROSPECTION": "false",
        "RUNQL_CORS_ORIGINS": "https://a.example, https://b.example",
        "RUNQL_LEASE_SWEEP_SECONDS": "0.5",
        "RUNQL_LOG_FORMAT": "text",
        "UNRELATED": "x",
    }

    settings = Settings.from_env(env, max_aliases=7)

    assert settings.port == 9000
    assert settings.graphiql is False and settings.introspection is False
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.lease_sweep_seconds == 0.5
    assert settings.log_format == "text"
    assert settings.max_aliases == 7
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUNQL_PORT": "eighty"}, "RUNQL_PORT"),
        ({"RUNQL_GRAPHIQL": "maybe"}, "RUNQL_GRAPHIQL: not a boolean"),
        ({"RUNQL_MAX_QUERY_DEPTH": "0"}, "RUNQL_MAX_QUERY_DEPTH: must be at least 1"),
        ({"RUNQL_LOG_FORMAT": "xml"}, "RUNQL_LOG_FORMAT: must be one of json, text"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_every_setting_is_documented() -> None:
    names = {f.name for f in dataclasses.fields(Settings)}

    assert sorted(names - FIELD_DOCS.keys()) == [], "add a line to FIELD_DOCS in runql/settings.py"
    assert sorted(FIELD_DOCS.keys() - names) == []


def test_configuration_doc_has_the_current_table() -> None:
    assert settings_table() in DOCS.read_text(), (
        "docs/configuration.md is out of date: paste the output of "
        "`python -c 'from runql.settings import settings_table; print(settings_table())'`"
    )
