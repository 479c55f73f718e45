"""Running runql under uvicorn: one process, or ``--workers N`` on one listening socket.

uvicorn binds the shared socket of its worker processes itself, as
``socket.socket(family)``, whose protocol number is 0. asyncio turns ``TCP_NODELAY`` on
only for sockets whose protocol is ``IPPROTO_TCP``, and an accepted connection inherits the
listener's, so with more than one worker every connection kept Nagle's algorithm: h11
writes a response's headers and body separately, and the body waited for the client's
delayed ACK, about 40 ms a request (bench/RESULTS.md). :class:`TCPConfig` hands uvicorn the
same socket with its protocol stated, so every accepted connection gets ``TCP_NODELAY``
as in the single-process server.

Metrics (``runql.observe.metrics``): with more than one worker, each writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless the operator set one; the
operator's is emptied first), and the supervisor forgets a worker's live gauges when the
worker exits and is replaced.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from runql.observe import metrics

APP = "runql.web.app:create_worker_app"


class TCPConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto:
            return sock
        tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.set_inheritable(True)
        return tcp


class Supervisor(Multiprocess):
    """uvicorn's supervisor, which also forgets the live gauges of workers that exited."""

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._forget(before)

    def restart_all(self) -> None:
        before = self._pids()
        super().restart_all()
        self._forget(before)

    def _pids(self) -> set[int]:
        return {p.pid for p in self.processes if p.pid is not None}

    def _forget(self, before: Iterable[int]) -> None:
        metrics.mark_dead(set(before) - self._pids())


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    ws_max_size: int,
    ws_compression: bool = False,
    with_metrics: bool = False,
) -> None:
    """Serve until stopped. Each worker builds its app from the environment
    (``runql.web.app.create_worker_app``); uvicorn picks uvloop and httptools when installed.
    ``with_metrics``: prepare the directory the workers' metrics share."""
    config = TCPConfig(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # No logging config of uvicorn's own: its loggers reach the root logger, which
        # runql's configure_logging gives the JSON handler (one format on stderr).
        log_config=None,
        ws_max_size=ws_max_size,
        ws_per_message_deflate=ws_compression,
    )
    shared = metrics.multiprocess_directory(workers) if with_metrics else None
    with shared or contextlib.nullcontext():
        if workers > 1:
            Supervisor(config, sockets=[config.bind_socket()]).run()
            return
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
