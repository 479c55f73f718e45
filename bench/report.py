"""The bench's output: a table per backend, the targets, and ``name: value unit`` lines.

The same content goes to the terminal and to ``bench/RESULTS.md`` (with the machine it
ran on). The hand-written analysis below the ``NOTES_MARKER`` line of an existing
RESULTS.md is kept when the file is rewritten, so re-running the bench refreshes the
figures without losing the notes on why a figure misses.
"""

from __future__ import annotations

import datetime as dt
import operator
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.timing import Timing

NOTES_MARKER = "<!-- notes below this line are kept when the bench rewrites this file -->"


@dataclass
class Row:
    backend: str
    scenario: str
    case: str
    median_ms: float | None
    n: int
    statements: int | None
    extra: str = ""


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None
    unit: str

    def line(self) -> str:
        if self.value is None:
            return f"{self.name}: n/a {self.unit}"
        shown = f"{self.value:.0f}" if abs(self.value) >= 100 else f"{self.value:.3g}"
        if self.unit in ("statements", "requests", "bytes", "jobs"):
            shown = f"{self.value:.0f}"
        return f"{self.name}: {shown} {self.unit}"


@dataclass(frozen=True)
class Target:
    """A figure the issue aims for; reported as met or missed, never enforced."""

    figure: str
    compare: Callable[[float, float], bool]
    threshold: float
    wording: str
    backends: tuple[str, ...] = ("sqlite", "postgresql")


TARGETS = (
    Target("runs_page.flatness_d1000_over_d1", operator.le, 1.5, "D=1000 within 1.5x of D=1"),
    Target("runs_page.naive_over_runql_d1000", operator.ge, 50, ">= 50x faster than naive"),
    Target("raw_floor.runql_over_floor_d1", operator.le, 3, "within 3x of raw SQL (D=1)"),
    Target("raw_floor.runql_over_floor_d1000", operator.le, 3, "within 3x of raw SQL (D=1000)"),
    Target(
        "graphql_floor.runql_over_floors_d1",
        operator.le,
        1.5,
        "within 1.5x of SQL + GraphQL floors (D=1)",
    ),
    Target(
        "graphql_floor.runql_over_floors_d1000",
        operator.le,
        1.5,
        "within 1.5x of SQL + GraphQL floors (D=1000)",
    ),
    Target("runs_page.statements_d1000", operator.le, 4, "runs page in <= 4 statements"),
    Target("bulk_stop.speedup", operator.ge, 20, "bulk stop >= 20x one-per-run"),
    Target("pipeline.batched_jobs_per_s", operator.ge, 3000, "pipeline batched >= 3,000 jobs/s"),
    Target("pipeline.cycle_jobs_per_s", operator.ge, 3000, "pipeline cycle >= 3,000 jobs/s"),
    Target("pipeline.speedup", operator.ge, 5, "batched >= 5x one-per-request"),
    Target("events.batched_cost_pct", operator.le, 10, "event log costs batched pipeline <= 10%"),
    Target("events.cycle_cost_pct", operator.le, 10, "event log costs cycle pipeline <= 10%"),
    Target(
        "tracing.off_over_without_extra",
        operator.le,
        1.05,
        "runs page with tracing off within 5% of no tracing extra",
    ),
    Target("runner_e2e.jobs_per_s", operator.ge, 1000, "runql runner >= 1,000 jobs/s"),
    Target(
        "runner_e2e.gap_p50_ms",
        operator.le,
        20,
        "runner: upstream done -> downstream start p50 <= 20 ms",
    ),
    Target("dstack.p50_ms", operator.le, 8, "dstack shape p50 <= 8 ms over HTTP"),
    Target(
        "dstack.apq_p50_ms",
        operator.le,
        8,
        "dstack shape p50 <= 8 ms over HTTP, APQ hash only (scenario 8b)",
    ),
    Target(
        "dstack.req_per_s_8_clients_per_core",
        operator.ge,
        100,
        "dstack shape >= 100 req/s, 8 clients, one worker per core",
    ),
)


@dataclass
class Report:
    quick: bool
    rows: list[Row] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    _timings: dict[str, Timing] = field(default_factory=dict)

    # --- collecting --------------------------------------------------------------------

    def timing(
        self, backend: str, scenario: str, case: str, timing: Timing, *, key: str, extra: str = ""
    ) -> None:
        self._timings[f"{backend}.{key}"] = timing
        self.rows.append(
            Row(backend, scenario, case, timing.median_ms, timing.n, timing.statements, extra)
        )
        self.figures.append(Figure(f"{backend}.{key}", timing.median_ms, "ms"))
        print(f"  {backend:<10} {scenario:<18} {case:<30} {timing.median_ms:10.2f} ms"
              f"  n={timing.n:<3} stmts={timing.statements:<3} {extra}", flush=True)  # fmt: skip

    def row(self, backend: str, scenario: str, case: str, extra: str) -> None:
        """A line of the table that is not a latency (throughput, counts)."""
        self.rows.append(Row(backend, scenario, case, None, 0, None, extra))
        print(f"  {backend:<10} {scenario:<18} {case:<30} {extra}", flush=True)

    def figure(self, backend: str, name: str, value: float | None, unit: str) -> None:
        self.figures.append(Figure(f"{backend}.{name}", value, unit))

    def skip(self, backend: str, scenario: str, reason: str) -> None:
        line = f"{backend} {scenario}: not measured yet: {reason}"
        self.skipped.append(line)
        print(f"  {line}", flush=True)

    def median(self, backend: str, key: str) -> float | None:
        timing = self._timings.get(f"{backend}.{key}")
        return None if timing is None else timing.median_ms

    def statements(self, backend: str, key: str) -> int | None:
        timing = self._timings.get(f"{backend}.{key}")
        return None if timing is None else timing.statements

    def ratio(self, backend: str, numerator: str, denominator: str) -> float | None:
        a, b = self.median(backend, numerator), self.median(backend, denominator)
        return None if a is None or not b else a / b

    def value(self, name: str) -> float | None:
        for figure in self.figures:
            if figure.name == name:
                return figure.value
        return None

    # --- output ------------------------------------------------------------------------

    def target_lines(self, backends: list[str]) -> list[tuple[str, str, str]]:
        """``(target, figure, verdict)`` for every target of every measured backend."""
        out = []
        for target in TARGETS:
            for backend in backends:
                if backend not in target.backends:
                    continue
                name = f"{backend}.{target.figure}"
                value = self.value(name)
                if value is None:
                    verdict = "not measured"
                elif target.compare(value, target.threshold):
                    verdict = "met"
                else:
                    verdict = "MISSED"
                shown = "n/a" if value is None else f"{value:.3g}"
                out.append((f"{backend}: {target.wording}", f"{name} = {shown}", verdict))
        return out

    def backends(self) -> list[str]:
        return list(dict.fromkeys(row.backend for row in self.rows))

    def table(self) -> str:
        lines = [
            "| backend | scenario | case | median ms | n | SQL stmts | notes |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for r in self.rows:
            median = "" if r.median_ms is None else f"{r.median_ms:.2f}"
            stmts = "" if r.statements is None else str(r.statements)
            n = str(r.n) if r.n else ""
            lines.append(
                f"| {r.backend} | {r.scenario} | {r.case} | {median} | {n} | {stmts} | {r.extra} |"
            )
        return "\n".join(lines)

    def print_summary(self) -> None:
        print("\n" + self.table())
        print("\nTargets (reported, never enforced):")
        for target, figure, verdict in self.target_lines(self.backends()):
            print(f"  {verdict:<12} {target:<45} {figure}")
        for line in self.skipped:
            print(f"  {line}")
        print()
        for figure in self.figures:
            print(figure.line())

    def write_markdown(self, path: Path, machine: dict[str, str]) -> None:
        kept = ""
        if path.exists():
            existing = path.read_text()
            if NOTES_MARKER in existing:
                kept = existing.split(NOTES_MARKER, 1)[1].strip()
        not_measured = ["", "## Not measured", "", *(f"- {line}" for line in self.skipped)]
        if not self.skipped:
            not_measured = []
        parts = [
            "# runql benchmark results",
            "",
            "Written by `make bench` (`python -m bench`). Medians after a warm-up; "
            "SQL statements per request counted by runql's statement recorder; ratios "
            "measured in the same process run. See `docs/benchmarks.md` for what each "
            "scenario does.",
            "",
            "## Machine",
            "",
            *(f"- {key}: {value}" for key, value in machine.items()),
            "",
            "## Figures",
            "",
            self.table(),
            "",
            "## Targets (reported, never enforced)",
            "",
            "| target | figure | verdict |",
            "|---|---|---|",
            *(f"| {t} | `{f}` | {v} |" for t, f, v in self.target_lines(self.backends())),
            *not_measured,
            "",
            "## `name: value unit`",
            "",
            "```",
            *(figure.line() for figure in self.figures),
            "```",
            "",
            NOTES_MARKER,
            "",
            kept or "## Notes\n\n(none yet)",
            "",
        ]
        path.write_text("\n".join(parts))


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine_description(postgres_version: str | None) -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import sqlite3

    names = ("SQLAlchemy", "asyncpg", "aiosqlite", "strawberry-graphql", "graphql-core", "uvicorn")
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    fast = []  # what `runql serve` picks up when installed (the `fast` extra)
    for name in ("uvloop", "httptools"):
        try:
            fast.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            fast.append(f"{name} not installed")
    versions += "; " + ", ".join(fast)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = " (+ uncommitted changes)" if _run(["git", "status", "--porcelain"]) else ""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": f"{commit}{dirty}" if commit else "unknown",
        "cpu": f"{cpu} x {os.cpu_count()} cores",
        "memory": memory,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version or "not measured",
        "libraries": versions,
        "load average when the bench ended (1, 5, 15 min)": load,
    }
