"""One job's process: started in its own process group, output to its log files, and
how it ended turned into a completion.

Each job gets ``<log-dir>/job-<id>.out`` (stdout) and ``job-<id>.err`` (stderr), written
by the process itself (the runner never pipes output through itself). A failure's message
is the tail of stderr, read back bounded and made safe: whatever bytes the process wrote
(NUL, invalid UTF-8, terminal escapes) become text a database and a terminal accept.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runql.clients.runner.spec import Command

#: Bytes of stderr read back for a failure's message, and characters kept of them.
TAIL_BYTES = 4096
TAIL_CHARS = 800
#: Largest result file read (the server's default RUNQL_MAX_JSON_BYTES).
MAX_RESULT_BYTES = 256_000
#: Variables the runner keeps from its jobs: the token is the runner's, not theirs.
PRIVATE_VARIABLES = ("RUNQL_TOKEN",)

_CONTROL = {c: "\ufffd" for c in range(32) if chr(c) not in "\n\t"} | {127: "\ufffd"}


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as ``completeJobs`` takes it."""

    status: str  # DONE or FAILED
    exit_status: int | None = None
    message: str | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobInfo:
    """What the process is told about its job (``RUNQL_*`` variables)."""

    job_id: str
    run_id: str
    submission_num: int


def safe_text(raw: bytes, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``raw`` as printable text: invalid UTF-8 and
    control characters (NUL included; newlines and tabs kept) become U+FFFD."""
    text = raw.decode("utf-8", errors="replace").translate(_CONTROL).strip()
    return text[-limit:]


def job_environment(
    base: dict[str, str], command: Command, info: JobInfo, result: Path
) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in PRIVATE_VARIABLES}
    env.update(command.env)
    env.update(
        RUNQL_JOB_ID=info.job_id,
        RUNQL_RUN_ID=info.run_id,
        RUNQL_SUBMISSION_NUM=str(info.submission_num),
        RUNQL_RESULT_FILE=str(result),
    )
    return env


class StartError(Exception):
    """The process could not be started; ``outcome`` is the job's completion."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class JobProcess:
    """A started job: its process group, its pidfd (readable once it exits) and files."""

    def __init__(
        self, popen: subprocess.Popen[bytes], stderr_path: Path, result_path: Path
    ) -> None:
        self.popen = popen
        self.stderr_path = stderr_path
        self.result_path = result_path
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(popen.pid)

    @classmethod
    def start(
        cls,
        command: Command,
        info: JobInfo,
        *,
        log_dir: Path,
        result_dir: Path,
        base_env: dict[str, str],
    ) -> JobProcess:
        out_path = log_dir / f"job-{info.job_id}.out"
        err_path = log_dir / f"job-{info.job_id}.err"
        result_path = result_dir / f"job-{info.job_id}.json"
        with contextlib.suppress(FileNotFoundError):
            result_path.unlink()  # left over from an earlier claim of this id: not its result
        env = job_environment(base_env, command, info, result_path)
        try:
            with out_path.open("wb") as out, err_path.open("wb") as err:
                popen = subprocess.Popen(
                    command.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=command.cwd,
                    env=env,
                    process_group=0,  # its own group: stopping it stops its children too
                )
        except FileNotFoundError as exc:
            missing = command.cwd if exc.filename == command.cwd else command.argv[0]
            key = "spec.cwd" if missing == command.cwd else "spec.cmd[0]"
            raise StartError(
                Outcome("FAILED", 127, f"cannot start: {key}: no such file or directory: {missing}")
            ) from None
        except PermissionError as exc:
            raise StartError(
                Outcome("FAILED", 126, f"cannot start {command.argv[0]}: {exc.strerror}")
            ) from None
        except OSError as exc:
            raise StartError(Outcome("FAILED", 126, f"cannot start: {exc}")) from None
        return cls(popen, err_path, result_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the job's process group (its children too)."""
        if self.popen.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def outcome(self, stopped: str | None = None) -> Outcome:
        """The completion of an exited process. ``stopped``: why the runner stopped it
        (the job is then ``FAILED`` whatever its exit status)."""
        code = self.popen.returncode
        assert code is not None, "outcome() of a running process"
        if code < 0:
            exit_status = 128 - code
            how = f"killed by {_signal_name(-code)}"
        else:
            exit_status = code
            how = f"exit status {code}"
        result, result_problem = self._result()
        if code == 0 and stopped is None and result_problem is None:
            return Outcome("DONE", 0, None, result)
        parts = [p for p in (stopped, result_problem) if p]
        if code != 0 or stopped:
            parts.append(how)
        tail = self._stderr_tail()
        message = ": ".join(parts) + (f": {tail}" if tail else "")
        return Outcome("FAILED", exit_status, message, result if result_problem is None else None)

    def _stderr_tail(self) -> str:
        try:
            with self.stderr_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL_BYTES))
                return safe_text(f.read(TAIL_BYTES))
        except OSError:
            return ""

    def _result(self) -> tuple[dict[str, Any] | None, str | None]:
        """The object the job wrote to ``RUNQL_RESULT_FILE``, or why it cannot be used."""
        try:
            with self.result_path.open("rb") as f:
                raw = f.read(MAX_RESULT_BYTES + 1)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"RUNQL_RESULT_FILE: cannot read: {exc.strerror}"
        finally:
            with contextlib.suppress(OSError):
                self.result_path.unlink()
        if len(raw) > MAX_RESULT_BYTES:
            return None, f"RUNQL_RESULT_FILE: larger than {MAX_RESULT_BYTES:,} bytes"
        try:
            value = json.loads(raw, parse_constant=_no_constant)
        except ValueError:
            return None, "RUNQL_RESULT_FILE: not valid JSON"
        if not isinstance(value, dict):
            return None, f"RUNQL_RESULT_FILE: expected a JSON object, got {type(value).__name__}"
        return value, None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
