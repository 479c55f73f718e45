"""A py-spy profile (``--format raw``: collapsed stacks) as a few lines of text.

Self time by package (where the sampled frame's code lives), the functions with the most
self time, and the inclusive share of a few functions that tell where a request's time
goes (``INCLUSIVE``). Used by scenario 8b (``BENCH_PYSPY``); ``python -m
bench.profile_summary FILE`` prints the summary of a recorded file.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

#: (label, pattern a frame's text contains): inclusive shares worth reading.
INCLUSIVE = (
    ("strawberry Schema.execute", "execute (strawberry/schema/schema.py"),
    ("graphql-core execute_fields", "execute_fields (graphql/execution/executor.py"),
    ("runql resolvers", "(runql/resolvers/"),
    ("runql schema types", "(runql/schema/"),
    ("SQLAlchemy", "(sqlalchemy/"),
    ("token lookup", "authenticate (runql/resolvers/auth.py"),
    ("persisted documents", "(runql/web/persisted.py"),
    ("JSON encoding", "(json/encoder.py"),
)
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
PACKAGES = (
    "graphql",
    "strawberry",
    "runql",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "starlette",
    "uvicorn",
    "cross_web",
    "json",
    "asyncio",
    "aiodataloader",
)


def _package(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    parts = re.split(r"[/\\]", path)
    for part in reversed(parts[:-1] or parts):
        if part in PACKAGES:
            return part
    for package in PACKAGES:
        if f"/{package}/" in path or path.startswith(f"{package}/"):
            return package
    return "other" if path.endswith(".py") else "native/idle"


def summarise(path: str | Path, top: int = 15) -> str:
    samples: list[tuple[list[str], int]] = []
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    total = sum(count for _, count in samples) or 1
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in samples:
        leaf = frames[-1]
        by_package[_package(leaf)] += count
        by_function[leaf] += count
        for label, pattern in INCLUSIVE:
            if any(pattern in frame for frame in frames):
                inclusive[label] += count
    lines = [f"py-spy: {total} samples"]
    lines.append("self by package: " + ", ".join(
        f"{name} {count / total:.0%}" for name, count in by_package.most_common()
    ))  # fmt: skip
    lines.append("inclusive: " + ", ".join(
        f"{label} {inclusive[label] / total:.0%}" for label, _ in INCLUSIVE
    ))  # fmt: skip
    lines.append(f"top {top} self:")
    for frame, count in by_function.most_common(top):
        lines.append(f"  {count / total:5.1%}  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1]))
