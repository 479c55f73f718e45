"""What a job runs: the ``Job.spec`` convention of ``runql runner``.

=================  ===========================================================
``cmd``            an argv list (``["python", "train.py"]``), or a string run by
                   ``/bin/sh -c``; required
``env``            an object of extra environment variables (string, number or
                   boolean values)
``cwd``            the working directory (default: the runner's)
``timeoutSeconds`` stop the job after this many seconds (positive number)
=================  ===========================================================

Other keys are left alone (they are the job's own configuration). A spec that does not
follow the convention fails *that job* with a message naming the key; the runner carries on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ARGS = 10_000


class SpecError(ValueError):
    """The spec cannot be run; the message names the key and is shown as the job's."""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_seconds: float | None = None


def parse(spec: Any) -> Command:
    """The command a spec describes, or :class:`SpecError`."""
    if not isinstance(spec, dict):
        raise SpecError("spec: expected a JSON object with cmd")
    return Command(
        argv=_argv(spec.get("cmd")),
        env=_env(spec.get("env")),
        cwd=_cwd(spec.get("cwd")),
        timeout_seconds=_timeout(spec.get("timeoutSeconds")),
    )


def _argv(cmd: Any) -> list[str]:
    if cmd is None:
        raise SpecError(
            "spec.cmd: missing: give an argv list of strings or a string for /bin/sh -c"
        )
    if isinstance(cmd, str):
        if not cmd.strip():
            raise SpecError("spec.cmd: empty string")
        if "\x00" in cmd:
            raise SpecError("spec.cmd: contains a NUL character")
        return ["/bin/sh", "-c", cmd]
    if isinstance(cmd, list):
        if not cmd:
            raise SpecError("spec.cmd: empty list")
        if len(cmd) > MAX_ARGS:
            raise SpecError(f"spec.cmd: more than {MAX_ARGS:,} arguments")
        for i, arg in enumerate(cmd):
            if not isinstance(arg, str):
                raise SpecError(f"spec.cmd[{i}]: expected a string, got {type(arg).__name__}")
            if "\x00" in arg:
                raise SpecError(f"spec.cmd[{i}]: contains a NUL character")
        if not cmd[0]:
            raise SpecError("spec.cmd[0]: empty program name")
        return list(cmd)
    raise SpecError(f"spec.cmd: expected an argv list or a string, got {type(cmd).__name__}")


def _env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise SpecError(f"spec.env: expected an object, got {type(env).__name__}")
    out: dict[str, str] = {}
    for key, value in env.items():
        if not key or "=" in key or "\x00" in key:
            raise SpecError(f"spec.env: invalid variable name {key!r}")
        if isinstance(value, bool):
            out[key] = "1" if value else "0"
        elif isinstance(value, str | int | float):
            text = str(value)
            if "\x00" in text:
                raise SpecError(f"spec.env.{key}: contains a NUL character")
            out[key] = text
        else:
            raise SpecError(
                f"spec.env.{key}: expected a string, number or boolean, got {type(value).__name__}"
            )
    return out


def _cwd(cwd: Any) -> str | None:
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd or "\x00" in cwd:
        raise SpecError("spec.cwd: expected a directory path (a non-empty string)")
    return cwd


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SpecError(f"spec.timeoutSeconds: expected a positive number, got {value!r}")
    return float(value)
