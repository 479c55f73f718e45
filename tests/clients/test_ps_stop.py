"""``runql ps`` and ``runql stop`` against ``runql serve`` with the demo data: the runs
page as a table, ``stopRuns`` per run, and clear errors for an unreachable server, a
refused token and an unknown run. ``ps --watch`` follows live updates:
tests/clients/test_live_clients.py."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from runql.cli.demo import load_demo
from runql.db.engine import Database
from runql.db.migrate import upgrade
from tests.clients.helpers import client_env
from tests.processes import Server, free_port, running
from tests.processes import runql as run_command

pytestmark = pytest.mark.slow  # real runql serve and CLI processes: see DEVELOPERS.md, Tests

ADMIN = "rql_demo_admin_token"


@pytest_asyncio.fixture(scope="module")
async def demo_server(tmp_path_factory) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("demo")
    url = f"sqlite+aiosqlite:///{directory / 'demo.db'}"
    db = Database(url, pool_size=1)
    await upgrade(db)
    await load_demo(db)
    await db.dispose()
    async with running(Server(url, ADMIN, directory / "serve.log")) as server:
        yield server


def runql(server: Server, *args: str, token: str = ADMIN) -> subprocess.CompletedProcess[str]:
    """``runql <args>`` as a client of ``server`` with ``token``."""
    return run_command(client_env(server, token), *args)


def rows(table: str) -> dict[str, list[str]]:
    """Table rows by run name (the second column)."""
    lines = table.splitlines()
    assert lines[0].split()[:7] == ["ID", "NAME", "PROJECT", "USER", "STATUS", "JOBS", "SUBMITTED"]
    return {line.split()[1]: line.split() for line in lines[1:]}


ACTIVE = """{ runs(first: 100, filter: { onlyActive: true }) { edges { node { id name } } } }"""
EVERY = """{ runs(first: 100) { edges { node { id name status } } } }"""


async def test_ps_lists_the_runs_page(demo_server: Server) -> None:
    active = {e["node"]["name"] for e in (await demo_server.gql(ACTIVE))["runs"]["edges"]}
    every = (await demo_server.gql(EVERY))["runs"]["edges"]

    listed = await asyncio.to_thread(runql, demo_server, "ps")
    listed_all = await asyncio.to_thread(runql, demo_server, "ps", "--all")
    vision = await asyncio.to_thread(runql, demo_server, "ps", "--all", "--project", "vision")

    assert listed.returncode == 0, listed.stderr
    assert set(rows(listed.stdout)) == active and active
    assert set(rows(listed_all.stdout)) == {e["node"]["name"] for e in every}
    statuses = {e["node"]["name"]: e["node"]["status"] for e in every}
    for name, row in rows(listed_all.stdout).items():
        assert row[4] == statuses[name]
        done, total = map(int, row[5].split("/"))
        assert 0 <= done <= total
    assert {row[2] for row in rows(vision.stdout).values()} == {"vision"}


async def test_stop_prints_each_runs_result(demo_server: Server) -> None:
    active = [e["node"] for e in (await demo_server.gql(ACTIVE))["runs"]["edges"]]
    target = active[0]

    stopped = await asyncio.to_thread(runql, demo_server, "stop", target["id"], "999999")
    again = await asyncio.to_thread(runql, demo_server, "stop", target["id"])

    assert stopped.returncode == 1  # one of the two was not found
    first, unknown = stopped.stdout.splitlines()
    assert first.startswith(f"{target['name']} ({target['id']}): TERM")
    assert unknown.startswith("999999: NOT_FOUND: ")
    assert again.returncode in (0, 1) and again.stdout.startswith(target["name"])


async def test_clear_errors(demo_server: Server, tmp_path: Path) -> None:
    refused = await asyncio.to_thread(runql, demo_server, "ps", token="rql_wrong")
    runner = await asyncio.to_thread(
        runql, demo_server, "runner", "--state-dir", str(tmp_path / "s"), token="rql_wrong"
    )
    no_token = await asyncio.to_thread(runql, demo_server, "ps", token="")
    unreachable = await asyncio.to_thread(
        runql, demo_server, "stop", "1", "--url", f"http://127.0.0.1:{free_port()}"
    )
    by_name = await asyncio.to_thread(runql, demo_server, "stop", "resnet-00")

    assert (refused.returncode, refused.stdout) == (1, "")
    assert "refused the API token in RUNQL_TOKEN" in refused.stderr
    assert runner.returncode == 1 and "refused the API token" in runner.stderr
    assert no_token.returncode == 1 and "set RUNQL_TOKEN" in no_token.stderr
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    assert by_name.returncode == 2 and "pass --project" in by_name.stderr
    assert "Traceback" not in refused.stderr + unreachable.stderr
