"""``runql runner``: its flags, and building the runner from them."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from runql.clients.api import Client, ClientError, Endpoint
from runql.clients.runner.idle import RECHECK_SECONDS, LiveIdle
from runql.clients.runner.journal import Journal, JournalBusy
from runql.clients.runner.loop import EXIT_FATAL, Options, Runner
from runql.clients.runner.status import Status
from runql.clients.runner.waker import Waker

MAX_SLOTS = 1000


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high:,}")
        return number

    return parse


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more (got {value!r})")
    return number


def default_state_dir(name: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runql" / f"runner-{name}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the API (default RUNQL_URL), e.g. http://127.0.0.1:8000")
    p.add_argument("--name", help="runner name shown as Job.runnerName (default: host name)")
    p.add_argument(
        "--slots", type=_count(1, MAX_SLOTS), default=os.cpu_count() or 1,
        help="jobs run at once (default: one per core)",
    )  # fmt: skip
    p.add_argument("--project", help="only run this project's jobs (default: every visible one)")
    p.add_argument(
        "--lease-seconds", type=_count(1, 3600), default=60,
        help="lease asked for each job, renewed every third of it (default 60)",
    )  # fmt: skip
    p.add_argument(
        "--state-dir", type=Path,
        help="journal of unacknowledged completions "
        "(default $XDG_STATE_HOME/runql/runner-NAME); one runner per directory",
    )  # fmt: skip
    p.add_argument("--log-dir", type=Path, help="per-job output (default STATE_DIR/logs)")
    p.add_argument(
        "--drain-seconds", type=_seconds, default=30.0,
        help="on SIGTERM/SIGINT, how long running jobs may finish before they are stopped",
    )  # fmt: skip
    p.add_argument(
        "--grace-seconds", type=_seconds, default=10.0,
        help="between SIGTERM and SIGKILL when a job is stopped (default 10)",
    )  # fmt: skip
    p.add_argument(
        "--fsync", action="store_true",
        help="force each journal write to disk (survives a power loss; one flush per cycle)",
    )  # fmt: skip
    # While jobsReady is up, how often an idle runner still claims (a safety net; the
    # tests raise it to show that signals alone wake the runner).
    p.add_argument(
        "--recheck-seconds", type=_seconds, default=RECHECK_SECONDS, help=argparse.SUPPRESS
    )


def run(args: argparse.Namespace) -> int:
    name = args.name or socket.gethostname()
    state_dir = args.state_dir or default_state_dir(name)
    try:
        endpoint = Endpoint.from_env(args.url)
    except ClientError as exc:
        print(f"runql runner: {exc}", file=sys.stderr)
        return EXIT_FATAL
    try:
        journal = Journal(state_dir, sync=args.fsync)
    except (JournalBusy, OSError) as exc:
        print(f"runql runner: --state-dir: {exc}", file=sys.stderr)
        return EXIT_FATAL
    options = Options(
        name=name,
        slots=args.slots,
        project=args.project,
        lease_seconds=args.lease_seconds,
        state_dir=state_dir,
        log_dir=args.log_dir or state_dir / "logs",
        drain_seconds=args.drain_seconds,
        grace_seconds=args.grace_seconds,
    )
    try:
        with Client(endpoint) as client:
            waker = Waker(endpoint, args.project)
            idle = LiveIdle(waker, recheck=max(args.recheck_seconds, 1.0))
            runner = Runner(client, options, journal, Status(args.slots), idle, waker)
            code = runner.run()
            if runner.fatal:
                print(f"runql runner: {runner.fatal}", file=sys.stderr)
            return code
    finally:
        journal.close()
