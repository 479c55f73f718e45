"""Completions not yet acknowledged, kept in ``--state-dir`` so none is ever lost.

A completion is written to the file *before* it is sent (a ``write`` that returned is in
the operating system's hands: it survives the runner's crash, a ``SIGKILL`` or the OOM
killer; with ``--fsync`` it is also forced to disk, surviving a power loss, at the cost of
a disk flush per cycle), and an acknowledgement is appended when the server has answered
it; a runner that restarts after a crash, a ``SIGKILL`` or a server outage sends again
whatever has no acknowledgement. Sending one twice is harmless: the server answers a
repeated completion idempotently. The file is one JSON object per line (``{"done": {...}}`` or
``{"ack": "<job id>"}``); a line torn by a crash is ignored (its completion was never sent,
and its job's lease will expire). The file is emptied whenever nothing is pending, so it
stays small. It holds claim tokens: it is created ``0600`` in a ``0700`` directory.

One runner per state directory: a second one gets :class:`JournalBusy` (an advisory lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "completions.jsonl"
LOCK_NAME = "runner.lock"


class JournalBusy(Exception):
    """Another runner holds this state directory."""


def read_pending(path: Path) -> dict[str, dict[str, Any]]:
    """The completions in a journal file without an acknowledgement, by job id, in the
    order they were written."""
    pending: dict[str, dict[str, Any]] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return pending
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # torn by a crash mid-write
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("done"), dict) and "jobId" in entry["done"]:
            pending[str(entry["done"]["jobId"])] = entry["done"]
        elif "ack" in entry:
            pending.pop(str(entry["ack"]), None)
    return pending


class Journal:
    def __init__(self, state_dir: Path, *, sync: bool = False) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = state_dir / FILE_NAME
        self.sync = sync
        self._lock = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise JournalBusy(f"{state_dir} is in use by another runner") from None
        self.pending = read_pending(self.path)
        self._rewrite()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _rewrite(self) -> None:
        """Compact the file to what is pending (atomically: a crash leaves old or new)."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(_line({"done": c}) for c in self.pending.values()))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def add(self, completions: list[dict[str, Any]]) -> None:
        """Record completions before they are sent (written when this returns; on disk
        too with ``sync``)."""
        if not completions:
            return
        os.write(self._fd, b"".join(_line({"done": c}) for c in completions))
        if self.sync:
            os.fdatasync(self._fd)
        for completion in completions:
            self.pending[str(completion["jobId"])] = completion

    def replace(self, completion: dict[str, Any]) -> None:
        """Record a changed completion of a pending job (the later line wins)."""
        self.add([completion])

    def acknowledge(self, job_ids: list[str]) -> None:
        """The server has answered these: forget them (emptying the file when nothing
        is left). Not synced: a lost acknowledgement only means a harmless resend."""
        for job_id in job_ids:
            self.pending.pop(job_id, None)
        if not self.pending:
            os.ftruncate(self._fd, 0)
        elif job_ids:
            os.write(self._fd, b"".join(_line({"ack": j}) for j in job_ids))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._lock)


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"
