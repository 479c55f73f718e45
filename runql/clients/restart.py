"""``runql restart``: ``restartRuns`` for a person at a terminal, over HTTP like any client
(``RUNQL_URL`` / ``--url``, ``RUNQL_TOKEN``).

One ``restartRuns`` for every run named (by id, or by name with ``--project``), then each
run's result on a line. Re-runs the jobs that did not end DONE; ``--all`` re-runs every
job. Exit status: 0 when every run restarted, 1 otherwise (an unreachable server, a
refused token, a run not found or not finished), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from runql.clients.api import Client, ClientError, Endpoint

RESTART_RUNS = """
mutation Restart($ids: [ID!], $project: String, $names: [String!], $scope: RestartScope!) {
  restartRuns(input: { runIds: $ids, project: $project, names: $names, scope: $scope }) {
    results { runId name run { status statusMessage attempt } error { code message } }
  }
}
"""


def add_restart_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids, or names with --project")
    p.add_argument("--url", help="the API (default RUNQL_URL)")
    p.add_argument("--project", help="RUN are names of this project's runs")
    p.add_argument(
        "--all",
        action="store_true",
        help="re-run every job (default: only those that did not end DONE)",
    )


def restart(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if args.project:
        variables = {"ids": None, "project": args.project, "names": args.runs}
    else:
        bad = [r for r in args.runs if not r.isdigit()]
        if bad:
            print(
                f"runql restart: {bad[0]!r} is not a run id; to restart runs by name, "
                "pass --project",
                file=sys.stderr,
            )
            return 2
        variables = {"ids": args.runs, "project": None, "names": None}
    scope = "ALL" if args.all else "FAILED"
    try:
        with Client(Endpoint.from_env(args.url)) as client:
            data = client.execute(RESTART_RUNS, {**variables, "scope": scope})
    except ClientError as exc:
        print(f"runql restart: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for asked, result in zip(args.runs, data["restartRuns"]["results"], strict=True):
        label = asked
        if result.get("name") and result.get("runId"):
            label = f"{result['name']} ({result['runId']})"
        error = result.get("error")
        if error:
            failed += 1
            out.write(f"{label}: {error['code']}: {error['message']}\n")
        else:
            run = result["run"]
            out.write(
                f"{label}: {run['status']}, attempt {run['attempt']} ({run['statusMessage']})\n"
            )
    return 1 if failed else 0
