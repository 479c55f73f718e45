"""``runql ps`` and ``runql stop``: the runs page and ``stopRuns`` for a person at a
terminal, over HTTP like any client (``RUNQL_URL`` / ``--url``, ``RUNQL_TOKEN``).

``ps`` is one request: the ``runs`` connection with the columns of the table. ``ps
--watch`` lists once, then follows ``runEvents`` from the list's ``eventCursor`` over a
WebSocket (docs/live-updates.md): events re-read the page with one request, at most every
:data:`COALESCE_SECONDS` however many arrive, and nothing is sent while nothing changes
(the ages in the table are redrawn from what was read). ``CURSOR_EXPIRED`` or a dropped
socket: list again and subscribe from the new list. Without a WebSocket (refused, a proxy
that does not pass upgrades) it polls every ``--interval`` seconds, saying so once on
stderr, and tries the WebSocket again with back-off. A server that goes away after the
first table (a restart) is waited for. SIGINT (Ctrl-C) or SIGTERM ends it with status 0,
as a first signal stops ``runql runner``; a second one while it closes, at once with 130.

``stop`` is one ``stopRuns`` for every run named, and prints each run's result. Exit
status: 0 when everything applied, 1 otherwise (an unreachable server, a refused token, a
run not found or not stoppable), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

from runql.clients.api import (
    RUNS_PAGE,
    STOP_RUNS,
    ApiError,
    Client,
    ClientError,
    Endpoint,
    Unreachable,
)
from runql.clients.bulk_runs import run_bulk
from runql.clients.runner.idle import Backoff
from runql.clients.runner.live import RUN_EVENTS, LiveSocket
from runql.error_codes import ErrorCode

PAGE = 50
#: Events arriving within this long of the first are shown with one re-read of the page.
COALESCE_SECONDS = 0.2
#: While no event arrives, the table (its ages) is redrawn from memory this often.
AGES_SECONDS = 1.0
#: Errors after which ``--watch`` lists again and resubscribes at once (the subscription
#: ended, the socket is fine): the cursor is too old, or the client read too slowly.
RESUBSCRIBE = (ErrorCode.CURSOR_EXPIRED, ErrorCode.LIMIT_EXCEEDED)
#: Exit status of ``ps --watch`` ended by SIGINT or SIGTERM (the runner's ``EXIT_OK``), and
#: by a second signal while it closes (the runner's ``EXIT_AT_ONCE``).
EXIT_STOPPED = 0
EXIT_AT_ONCE = 130
COLUMNS = ("ID", "NAME", "PROJECT", "USER", "STATUS", "JOBS", "SUBMITTED", "MESSAGE")


def add_ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the API (default RUNQL_URL)")
    p.add_argument("--project", help="only this project's runs")
    p.add_argument("--all", action="store_true", help="finished runs too (default: active only)")
    p.add_argument("--watch", action="store_true", help="keep the table up to date")
    # Polling, only while the WebSocket is unavailable.
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
        if not args.watch:
            with Client(endpoint) as client:
                out.write(_table(_runs(client, args)))
            return 0
        with _stopped_by_signals():
            try:
                with Client(endpoint) as client:
                    return _watch(client, endpoint, args, out)
            except _Stop:
                return EXIT_STOPPED
    except ClientError as exc:
        return _fail("ps", exc)


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived: ``ps --watch`` ends. A ``BaseException``, as
    ``KeyboardInterrupt``, so that no ``except Exception`` on the way (websockets, httpx)
    takes it for an error."""


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`_Stop` in the main thread, as they stop ``runql
    runner`` (whose handlers are its own too).

    Python's ``KeyboardInterrupt`` is not enough: a process that a shell started in the
    background without job control (``cmd &`` in a script, CI) inherits SIGINT ignored,
    and Python then leaves it ignored, so ``kill -INT`` did nothing to ``ps --watch``.
    Every wait of the main thread ends on a signal (``sleep``, a socket, the WebSocket's
    queue: ``EINTR``) or within :data:`AGES_SECONDS`, so the watch ends at once; closing
    the socket then takes at most the closing handshake's timeout. A second signal during
    that exits at once."""
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            os._exit(EXIT_AT_ONCE)
        stopping = True
        raise _Stop(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _page(
    client: Client, args: argparse.Namespace, watch: bool = False
) -> tuple[list[dict[str, Any]], str | None]:
    """The runs of the table, and (``watch``) the cursor to follow their changes from."""
    variables = {"project": args.project, "onlyActive": not args.all, "first": PAGE}
    data = client.execute(RUNS_PAGE, {**variables, "watch": watch})
    runs = [edge["node"] for edge in data["runs"]["edges"]]
    return runs, data["runs"].get("eventCursor")


def _runs(client: Client, args: argparse.Namespace) -> list[dict[str, Any]]:
    return _page(client, args)[0]


class _Screen:
    """The table as last read; written again only when its text changes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.runs: list[dict[str, Any]] = []
        self.shown: str | None = None

    def show(self, runs: list[dict[str, Any]] | None = None) -> None:
        if runs is not None:
            self.runs = runs
        table = _table(self.runs)
        if table != self.shown:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            self.out.write(("\x1b[H\x1b[2J" if self.tty else "\n") + f"{stamp}\n{table}")
            self.out.flush()
            self.shown = table


def _watch(client: Client, endpoint: Endpoint, args: argparse.Namespace, out: TextIO) -> int:
    """Until a signal (:class:`_Stop`) or an error of the page's own request."""
    screen = _Screen(out)
    retry = Backoff(1.0, 30.0)  # WebSocket attempts while polling
    runs, cursor = _page(client, args, watch=True)  # ps fails if this fails
    while True:
        screen.show(runs)
        try:
            ended = _follow(client, endpoint, args, screen, cursor, retry)
            if not (isinstance(ended, ApiError) and set(ended.codes) & set(RESUBSCRIBE)):
                _poll(client, args, screen, ended, retry)
        except Unreachable:
            pass  # the page's own request: the server went away (a restart, say)
        runs, cursor = _relist(client, args)


def _relist(client: Client, args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None]:
    """The page and its cursor again, waiting for a server that went away."""
    offline = Backoff(1.0, 30.0)
    while True:
        try:
            return _page(client, args, watch=True)
        except Unreachable as exc:
            delay = offline.next()
            if offline.failures == 1:
                print(f"runql ps: {exc}; trying again", file=sys.stderr)
            time.sleep(delay)


def _follow(
    client: Client,
    endpoint: Endpoint,
    args: argparse.Namespace,
    screen: _Screen,
    cursor: str | None,
    retry: Backoff,
) -> ClientError:
    """Redraw on ``runEvents`` until the subscription ends; returns why it ended. Errors
    of the page's own request (HTTP) are raised: ``ps`` stops on them as without
    ``--watch``."""
    try:
        socket = LiveSocket.connect(endpoint)
    except ClientError as exc:
        return exc
    with socket:
        try:
            socket.subscribe(RUN_EVENTS, {"project": args.project, "after": cursor})
            while True:
                event = socket.receive(AGES_SECONDS)
                if retry.reset():  # the subscription holds: live again
                    print("runql ps: live updates resumed", file=sys.stderr)
                if event is None:
                    screen.show()
                    continue
                deadline = time.monotonic() + COALESCE_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    socket.receive(left)
                screen.show(_runs(client, args))
        except (ApiError, Unreachable) as exc:
            if isinstance(exc, ApiError) and ErrorCode.UNAUTHENTICATED in exc.codes:
                raise
            return exc


def _poll(
    client: Client, args: argparse.Namespace, screen: _Screen, why: ClientError, retry: Backoff
) -> None:
    """Poll every ``--interval`` seconds until the next WebSocket attempt is due."""
    interval = max(0.1, args.interval)
    delay = retry.next()
    if retry.failures == 1:
        print(
            f"runql ps: live updates unavailable ({why}); polling every {interval:g} s",
            file=sys.stderr,
        )
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > interval:
        time.sleep(interval)
        screen.show(_runs(client, args))
    time.sleep(max(0.0, left))


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
    return run_bulk(
        "stop",
        args,
        mutation=STOP_RUNS,
        field="stopRuns",
        variables={"abort": args.abort},
        describe=lambda run: f"{run['status']} ({run['statusMessage']})",
        out=out,
    )
