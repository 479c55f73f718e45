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

from runql.clients.bulk_runs import run_bulk

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
    return run_bulk(
        "restart",
        args,
        mutation=RESTART_RUNS,
        field="restartRuns",
        variables={"scope": "ALL" if args.all else "FAILED"},
        describe=lambda run: f"{run['status']}, attempt {run['attempt']} ({run['statusMessage']})",
        out=out,
    )
