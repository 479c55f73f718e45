"""The ``runql`` command: serve, migrate, demo, user, project, export-schema, and the
clients of the API: runner, ps, stop, restart (runql/clients/runner/,
runql/clients/commands.py, runql/clients/restart.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from runql.settings import Settings

if TYPE_CHECKING:  # imported where used: the clients (runner, ps, stop) start without them
    from runql.db.engine import Database
    from runql.db.enums import MemberRole


def _database(settings: Settings) -> Database:
    from runql.db.engine import Database

    return Database(settings.database_url, pool_size=2)


def _run(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        db = _database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from runql.db.migrate import upgrade

    _run(settings, upgrade)
    print(f"database is up to date: {settings.database_url}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from runql.cli.demo import demo_tokens, load_demo

    async def work(db: Database) -> dict[str, str]:
        loaded = await load_demo(db, if_empty=args.if_empty)
        if loaded is None:
            print("database already has data: demo data not loaded")
        else:
            print("demo data loaded")
        return await demo_tokens(db)

    tokens = _run(settings, work)
    if tokens:
        print("\nDemo API tokens (in GraphiQL open 'Headers' at the bottom and paste):")
        for name, token in tokens.items():
            print(f'  {name:6} {{"Authorization": "Bearer {token}"}}')
        print()
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from runql.observe.logs import configure_logging
    from runql.web.manifest import ManifestError, load_manifest
    from runql.web.server import serve
    from runql.web.websocket import max_frame_bytes

    configure_logging(settings)  # the supervisor's own lines (workers configure theirs)
    if settings.trusted_documents:  # each worker reads it again; refuse before they start
        try:
            trusted = load_manifest(settings.trusted_documents)
        except ManifestError as exc:
            print(f"runql: {exc}", file=sys.stderr)
            return 1
        print(f"runql: only the {len(trusted.by_id)} trusted documents of {trusted.path} run")

    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.worker_count()
    # uvicorn starts every worker from an import string, and each reads its settings from
    # the environment: the count goes there too, so each worker takes its share of the
    # database pool (runql.web.app.create_worker_app).
    os.environ["RUNQL_WORKERS"] = str(workers)
    print(f"runql: GraphiQL and API at http://{host}:{port}/graphql ({workers} worker(s))")
    if settings.ui:
        print(f"runql: the runs page at http://{host}:{port}/ui")
    # WebSocket messages are held to max_body_bytes by runql (a GraphQL error); the frame
    # cap is the hard stop past which uvicorn closes the socket without reading on.
    serve(
        host=host,
        port=port,
        workers=workers,
        ws_max_size=max_frame_bytes(settings.max_body_bytes),
        ws_compression=settings.ws_compression,
        with_metrics=settings.metrics_enabled,
    )
    return 0


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    from runql.db.accounts import create_user

    async def work(db: Database) -> str:
        async with db.write() as session:
            _, token = await create_user(session, args.name, admin=args.admin)
        return token

    token = _run(settings, work)
    print(f"created user {args.name}{' (ADMIN)' if args.admin else ''}; API token (shown once):")
    print(token)
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1 (got {value!r})")
    return number


def _member(value: str) -> tuple[str, MemberRole]:
    from runql.db.enums import MemberRole

    name, _, role = value.partition(":")
    try:
        return name, MemberRole(role.upper() or "USER")
    except ValueError:
        roles = ", ".join(r.value for r in MemberRole)
        raise argparse.ArgumentTypeError(f"role must be one of {roles}") from None


def cmd_project_create(settings: Settings, args: argparse.Namespace) -> int:
    from runql.db.accounts import create_project

    async def work(db: Database) -> None:
        async with db.write() as session:
            await create_project(session, args.name, args.member or [])

    try:
        _run(settings, work)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"created project {args.name}")
    return 0


def cmd_export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from runql.schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")
    return 0


def cmd_documents_check(settings: Settings, args: argparse.Namespace) -> int:
    from runql.cli.documents import check

    return check(args.manifest, settings)


def cmd_runner(settings: Settings, args: argparse.Namespace) -> int:
    from runql.clients.runner.command import run

    return run(args)


def cmd_ps(settings: Settings, args: argparse.Namespace) -> int:
    from runql.clients.commands import ps

    return ps(args)


def cmd_stop(settings: Settings, args: argparse.Namespace) -> int:
    from runql.clients.commands import stop

    return stop(args)


def cmd_restart(settings: Settings, args: argparse.Namespace) -> int:
    from runql.clients.restart import restart

    return restart(args)


def _add_clients(sub: Any) -> None:
    """The API's own clients; they read RUNQL_URL and RUNQL_TOKEN, not the database."""
    from runql.clients.commands import add_ps_arguments, add_stop_arguments
    from runql.clients.restart import add_restart_arguments
    from runql.clients.runner.command import add_arguments

    runner = sub.add_parser("runner", help="claim and run jobs (spec.cmd), report how they end")
    add_arguments(runner)
    runner.set_defaults(func=cmd_runner)
    ps = sub.add_parser("ps", help="the runs page as a table")
    add_ps_arguments(ps)
    ps.set_defaults(func=cmd_ps)
    stop = sub.add_parser("stop", help="stop runs (one stopRuns), print each result")
    add_stop_arguments(stop)
    stop.set_defaults(func=cmd_stop)
    restart = sub.add_parser(
        "restart", help="restart finished runs (one restartRuns), print each result"
    )
    add_restart_arguments(restart)
    restart.set_defaults(func=cmd_restart)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runql",
        description="runql: GraphQL API of a workload orchestrator. "
        "Configuration comes from RUNQL_* environment variables (see README).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve GraphiQL and the API at /graphql")
    serve.add_argument("--host", help="interface to bind (default RUNQL_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default RUNQL_PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=_positive,
        help="processes serving the port (default RUNQL_WORKERS, or one per core)",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    demo = sub.add_parser("demo", help="load demo data and print demo API tokens")
    demo.add_argument("--if-empty", action="store_true", help="only when there are no users")
    demo.set_defaults(func=cmd_demo)
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    user_create = user.add_parser("create", help="create a user and print its API token once")
    user_create.add_argument("name")
    user_create.add_argument("--admin", action="store_true", help="global ADMIN (sees all)")
    user_create.set_defaults(func=cmd_user_create)
    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="action", required=True
    )
    project_create = project.add_parser("create", help="create a project")
    project_create.add_argument("name")
    project_create.add_argument(
        "--member",
        action="append",
        type=_member,
        metavar="USER[:ROLE]",
        help="add a member (ROLE: ADMIN, MANAGER or USER; default USER); repeatable",
    )
    project_create.set_defaults(func=cmd_project_create)
    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(
        func=cmd_export_schema
    )
    documents = sub.add_parser("documents", help="trusted documents").add_subparsers(
        dest="action", required=True
    )
    documents_check = documents.add_parser(
        "check", help="validate every document of a manifest against the current schema"
    )
    documents_check.add_argument("manifest", help="persisted query manifest (JSON)")
    documents_check.set_defaults(func=cmd_documents_check)
    _add_clients(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    result: int = args.func(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
