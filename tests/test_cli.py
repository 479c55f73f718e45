"""The ``runql`` command line: the commands a newcomer and an operator use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import processes


def runql(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``runql <args>`` on a SQLite file of the test's own."""
    env = {
        **processes.base_env(),
        "RUNQL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
    }
    return processes.runql(env, *args)


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = runql(tmp_path, "--help")

    assert result.returncode == 0
    for command in (
        "serve",
        "migrate",
        "demo",
        "user",
        "project",
        "export-schema",
        "runner",
        "ps",
        "stop",
    ):
        assert command in result.stdout


@pytest.mark.slow
def test_migrate_demo_user_and_project(tmp_path: Path) -> None:
    assert runql(tmp_path, "migrate").returncode == 0

    demo = runql(tmp_path, "demo", "--if-empty")
    again = runql(tmp_path, "demo", "--if-empty")
    user = runql(tmp_path, "user", "create", "carol", "--admin")
    project = runql(tmp_path, "project", "create", "ml", "--member", "carol:manager")
    unknown = runql(tmp_path, "project", "create", "x", "--member", "nobody")

    assert "demo data loaded" in demo.stdout
    assert "Bearer rql_demo_alice_token" in demo.stdout
    assert "already has data" in again.stdout
    assert user.returncode == 0 and user.stdout.strip().splitlines()[-1].startswith("rql_")
    assert project.returncode == 0 and "created project ml" in project.stdout
    assert unknown.returncode == 1 and "unknown user(s): nobody" in unknown.stderr


@pytest.mark.parametrize("role", ["boss"])
def test_bad_member_role_is_refused(tmp_path: Path, role: str) -> None:
    result = runql(tmp_path, "project", "create", "x", "--member", f"carol:{role}")

    assert result.returncode == 2
    assert "role must be one of ADMIN, MANAGER, USER" in result.stderr


def test_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    result = runql(tmp_path, "export-schema")

    assert result.returncode == 0
    assert "type Query" in result.stdout and "type Run @key" in result.stdout
