"""Wakes an idle runner when jobs may be ready, so it claims at once and otherwise sends
nothing: a daemon thread holds a ``jobsReady`` subscription (docs/live-updates.md) and
writes a byte to a pipe the runner's ``select`` watches.

The loop stays one thread: this thread only talks to the server and fills the pipe. What
it has to say (connected, unavailable and why) is queued as :class:`Note` objects that
the loop logs when it drains the pipe, so log lines and the TTY status line are written
by one thread.

Bytes on the pipe: :data:`CLAIM` (a signal arrived, or the subscription went down: claim
now) and :data:`NOTE` (only notes to log). While the subscription is up :attr:`Waker.live`
is true and the idle policy waits for it (``runql.clients.runner.idle.LiveIdle``). When it
cannot connect or drops, the thread notes it once with its cause, pokes the loop (which
falls back to polling) and reconnects with back-off. Nothing is missed meanwhile: the
fallback polls, and a new subscription signals at once when jobs are ready.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from runql.clients.api import ClientError, Endpoint
from runql.clients.runner.idle import Backoff
from runql.clients.runner.live import JOBS_READY, LiveSocket, websocket_url

CLAIM = b"c"
NOTE = b"n"
#: Reconnect delays after the subscription failed: 1 s doubling to 30 s.
RETRY_FIRST_SECONDS = 1.0
RETRY_LONGEST_SECONDS = 30.0
#: A new subscription counts as up once it held this long without an error (or signalled).
PROBATION_SECONDS = 1.0
#: How long :meth:`Waker.close` waits for the thread (a connect under way is not
#: interrupted: the thread is a daemon and ends with the process).
JOIN_SECONDS = 3.0


@dataclass(frozen=True)
class Note:
    """A log line for the loop to write (``Status.event``)."""

    event: str
    level: str = "info"
    fields: dict[str, Any] = field(default_factory=dict)


class Waker:
    def __init__(
        self,
        endpoint: Endpoint,
        project: str | None,
        retry: Backoff | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.project = project
        self.retry = retry or Backoff(RETRY_FIRST_SECONDS, RETRY_LONGEST_SECONDS)
        self.live = False  # written by the thread, read by the loop
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._notes: collections.deque[Note] = collections.deque()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socket: LiveSocket | None = None
        self._thread = threading.Thread(target=self._run, name="runql-jobs-ready", daemon=True)

    def fileno(self) -> int:
        """Readable when the loop should look: :meth:`take` says what for."""
        return self._read_fd

    def start(self) -> None:
        self._thread.start()

    def take(self) -> tuple[bool, list[Note]]:
        """Drain the pipe: whether to claim now, and the notes to log."""
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._read_fd, 512):
                data += chunk
        notes = []
        while self._notes:
            notes.append(self._notes.popleft())
        return CLAIM in data, notes

    def close(self) -> None:
        """Close the subscription and end the thread."""
        self._stop.set()
        with self._lock:
            socket = self._socket
        if socket is not None:
            socket.close()
        if self._thread.is_alive():
            self._thread.join(JOIN_SECONDS)
        if not self._thread.is_alive():  # else it may still write: leave the pipe be
            os.close(self._read_fd)
            os.close(self._write_fd)

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._subscribe_until_closed()
        except Exception as exc:  # a bug: say so and leave the runner polling
            self.live = False
            error = f"{type(exc).__name__}: {exc}"
            self._note(Note("live.failed", "error", {"error": error, "fallback": "polling"}), CLAIM)

    def _subscribe_until_closed(self) -> None:
        while not self._stop.is_set():
            try:
                socket = LiveSocket.connect(self.endpoint)
            except ClientError as exc:
                self._down(exc)
                continue
            with self._lock:
                if self._stop.is_set():
                    socket.close()
                    return
                self._socket = socket
            try:
                socket.subscribe(JOBS_READY, {"project": self.project})
                # A refused subscription (a bad token, an unknown project, a server going
                # down) answers at once: only one that holds is up (else every retry
                # would log a recovery, and reset the back-off, before failing again).
                first = socket.receive(PROBATION_SECONDS)
                self._up()
                if first is not None:
                    self._poke(CLAIM)
                while True:
                    socket.receive()
                    self._poke(CLAIM)
            except ClientError as exc:
                if not self._stop.is_set():
                    self._down(exc)
            finally:
                with self._lock:
                    self._socket = None
                socket.close()
        self.live = False

    def _up(self) -> None:
        self.live = True
        failures = self.retry.reset()
        fields: dict[str, Any] = {"url": websocket_url(self.endpoint.url), "project": self.project}
        if failures:
            fields["failed_attempts"] = failures
        self._note(Note("live.connected", fields=fields), NOTE)

    def _down(self, exc: ClientError) -> None:
        self.live = False
        delay = self.retry.next()
        if self.retry.failures == 1:  # once per outage; the loop falls back to polling
            note = Note(
                "live.unavailable",
                level="warning",
                fields={"error": str(exc), "fallback": "polling", "retry_seconds": delay},
            )
            self._note(note, CLAIM)
        self._stop.wait(delay)

    def _note(self, note: Note, byte: bytes) -> None:
        self._notes.append(note)
        self._poke(byte)

    def _poke(self, byte: bytes) -> None:
        if self._stop.is_set():
            return
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
            os.write(self._write_fd, byte)
