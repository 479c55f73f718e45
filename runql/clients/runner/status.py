"""What the runner tells a person or a log collector.

On a terminal: a one-line live status (slots busy, done, failed, jobs/s), redrawn at most
four times a second, with notable events printed above it. Otherwise: one JSON object per
line (``time``, ``level``, ``event`` and the event's fields), for a log collector.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import sys
import time
from typing import Any, TextIO

REDRAW_SECONDS = 0.25
RATE_WINDOW_SECONDS = 5.0


class Status:
    def __init__(self, slots: int, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.slots = slots
        self.busy = 0
        self.done = 0
        self.failed = 0
        self._line = ""
        self._note = ""
        self._closed = False
        self._drawn_at = 0.0
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        """A notable event: a log line, or on a terminal a line above the status."""
        if self.tty:
            if event == "job.finished" and fields.get("status") == "DONE":
                return  # the counters say it; a line per job would scroll the terminal away
            if event == "runner.idle":
                return  # the status line says it (0 busy); one per busy spell is for logs
            detail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            self._clear()
            self.stream.write(f"{_now()[11:19]} {level:7} {event} {detail}\n")
            if not self._closed:
                self._draw(force=True)
            self.stream.flush()
        else:
            line = {"time": _now(), "level": level, "event": event, **fields}
            self.stream.write(json.dumps(line, default=str) + "\n")
            self.stream.flush()

    def finished(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1

    def tick(self, busy: int, note: str = "") -> None:
        """Redraw the status line (terminal only, rate-limited)."""
        self.busy = busy
        if self.tty:
            self._note = note
            self._draw()

    def rate(self) -> float:
        now = time.monotonic()
        total = self.done + self.failed
        self._samples.append((now, total))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        first_time, first_total = self._samples[0]
        return (total - first_total) / (now - first_time) if now > first_time else 0.0

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        note = self._note
        line = (
            f"slots {self.busy}/{self.slots} busy · {self.done} done · {self.failed} failed"
            f" · {self.rate():.1f} jobs/s" + (f" · {note}" if note else "")
        )
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()
        self._line = line

    def _clear(self) -> None:
        if self._line:
            self.stream.write("\r\x1b[2K")

    def close(self) -> None:
        """The status line stays as it was last drawn; later events print below it."""
        if self.tty and self._line:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._line = ""
        self._closed = True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
