"""``runql ps`` and ``runql stop``: the runs page and ``stopRuns`` for a person at a
terminal, over HTTP like any client (``RUNQL_URL`` / ``--url``, ``RUNQL_TOKEN``).

``ps`` is one request: the ``runs`` connection with the columns of the table. ``ps
--watch`` redraws it every ``--interval`` seconds (polling; it will follow ``runEvents``
once live updates land). ``stop`` is one ``stopRuns`` for every run named, and prints
each run's result. Exit status: 0 when everything applied, 1 otherwise (an unreachable
server, a refused token, a run not found or not stoppable), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any, TextIO

from runql.runner.client import RUNS_PAGE, STOP_RUNS, Client, ClientError, Endpoint

PAGE = 50
COLUMNS = ("ID", "NAME", "PROJECT", "USER", "STATUS", "JOBS", "SUBMITTED", "MESSAGE")


def add_ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the API (default RUNQL_URL)")
    p.add_argument("--project", help="only this project's runs")
    p.add_argument("--all", action="store_true", help="finished runs too (default: active only)")
    p.add_argument("--watch", action="store_true", help="keep the table up to date")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)


def add_stop_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids, or names with --project")
    p.add_argument("--url", help="the API (default RUNQL_URL)")
    p.add_argument("--project", help="RUN are names of this project's runs")
    p.add_argument(
        "--abort", action="store_true", help="end every job now (ABORTED), not a wind-down"
    )


def _fail(command: str, exc: ClientError) -> int:
    print(f"runql {command}: {exc}", file=sys.stderr)
    return 1


def ps(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        endpoint = Endpoint.from_env(args.url)
        with Client(endpoint) as client:
            if not args.watch:
                out.write(_table(_runs(client, args)))
                return 0
            return _watch(client, args, out)
    except ClientError as exc:
        return _fail("ps", exc)


def _runs(client: Client, args: argparse.Namespace) -> list[dict[str, Any]]:
    variables = {"project": args.project, "onlyActive": not args.all, "first": PAGE}
    data = client.execute(RUNS_PAGE, variables)
    return [edge["node"] for edge in data["runs"]["edges"]]


def _watch(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    tty = out.isatty()
    shown = None
    try:
        while True:
            table = _table(_runs(client, args))
            if table != shown:
                stamp = dt.datetime.now().strftime("%H:%M:%S")
                out.write(("\x1b[H\x1b[2J" if tty else "\n") + f"{stamp}\n{table}")
                out.flush()
                shown = table
            time.sleep(max(0.1, args.interval))
    except KeyboardInterrupt:
        return 0


def _table(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no runs\n"
    rows = [COLUMNS] + [
        (
            str(r["id"]),
            r["name"],
            r["project"]["name"],
            r["user"]["name"],
            r["status"],
            f"{r['jobCounts']['done']}/{r['jobCounts']['total']}",
            _ago(r["submittedAt"]),
            r["statusMessage"],
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _ago(stamp: str) -> str:
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = max(0, int((dt.datetime.now(dt.UTC) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def stop(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if args.project:
        variables = {"ids": None, "project": args.project, "names": args.runs}
    else:
        bad = [r for r in args.runs if not r.isdigit()]
        if bad:
            print(
                f"runql stop: {bad[0]!r} is not a run id; to stop runs by name, pass --project",
                file=sys.stderr,
            )
            return 2
        variables = {"ids": args.runs, "project": None, "names": None}
    try:
        with Client(Endpoint.from_env(args.url)) as client:
            data = client.execute(STOP_RUNS, {**variables, "abort": args.abort})
    except ClientError as exc:
        return _fail("stop", exc)
    failed = 0
    for asked, result in zip(args.runs, data["stopRuns"]["results"], strict=True):
        label = asked
        if result.get("name") and result.get("runId"):
            label = f"{result['name']} ({result['runId']})"
        error = result.get("error")
        if error:
            failed += 1
            out.write(f"{label}: {error['code']}: {error['message']}\n")
        else:
            run = result["run"]
            out.write(f"{label}: {run['status']} ({run['statusMessage']})\n")
    return 1 if failed else 0
