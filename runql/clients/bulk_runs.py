"""What ``runql stop`` and ``runql restart`` share: one bulk mutation for every run named
on the command line (by id, or by name with ``--project``), then a line per run.

Exit status: 0 when every run's item succeeded, 1 otherwise (an unreachable server, a
refused token, a run not found or refused), 2 for a run that is not an id without
``--project``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from runql.clients.api import Client, ClientError, Endpoint


def run_bulk(
    command: str,
    args: argparse.Namespace,
    *,
    mutation: str,
    field: str,
    variables: dict[str, Any],
    describe: Callable[[dict[str, Any]], str],
    out: TextIO,
) -> int:
    """Send ``mutation`` once for ``args.runs`` (with ``variables`` besides the runs), then
    write each result: ``describe(run)`` for a run it applied to, the error otherwise."""
    if args.project:
        runs: dict[str, Any] = {"ids": None, "project": args.project, "names": args.runs}
    else:
        bad = [r for r in args.runs if not r.isdigit()]
        if bad:
            print(
                f"runql {command}: {bad[0]!r} is not a run id; to {command} runs by name, "
                "pass --project",
                file=sys.stderr,
            )
            return 2
        runs = {"ids": args.runs, "project": None, "names": None}
    try:
        with Client(Endpoint.from_env(args.url)) as client:
            data = client.execute(mutation, {**runs, **variables})
    except ClientError as exc:
        print(f"runql {command}: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for asked, result in zip(args.runs, data[field]["results"], strict=True):
        label = asked
        if result.get("name") and result.get("runId"):
            label = f"{result['name']} ({result['runId']})"
        error = result.get("error")
        if error:
            failed += 1
            out.write(f"{label}: {error['code']}: {error['message']}\n")
        else:
            out.write(f"{label}: {describe(result['run'])}\n")
    return 1 if failed else 0
