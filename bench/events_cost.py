"""Scenario 12: what the event log costs the pipeline (issue 14's budget: at most 10% of
its throughput).

The pipeline of scenario 6 (same runners, same documents, a real ``runql serve``) against
two servers on one database, one as shipped and one with ``RUNQL_LIVE_UPDATES=false``
(no event log written). Runs alternate on, off, off, on, on, off... and each side keeps
its best of five, so a slow moment of the machine does not land on one side only. The cost is
``1 - on / off``. Throughput on this 2-core VM swings by 10-20% between runs of a few
seconds, so the server's CPU time per job (its processes' user + system time, read from
``/proc``; the database server's own CPU is not in it) is reported beside it: steadier,
and what the log costs runql's Python.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.env import Config, database_url
from bench.pipeline import BATCH, _seed, drive, serving_process
from bench.report import Report

SCENARIO = "12 events cost"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    return sum(times.get(p, 0.0) for p in tree)


async def measure_events_cost(backend: str, config: Config, report: Report) -> None:
    width = 150 if config.quick else 1500
    rounds = 2 if config.quick else 5
    async with database_url(backend) as url:
        token = await _seed(url)
        async with (
            serving_process(url) as with_events,
            serving_process(url, {"RUNQL_LIVE_UPDATES": "false"}) as without_events,
        ):
            sides = {"on": with_events, "off": without_events}
            for mode, cycle in (("batched", False), ("cycle", True)):
                best = {"on": 0.0, "off": 0.0}
                cpu_ms = {"on": float("inf"), "off": float("inf")}
                for round_ in range(rounds):
                    order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
                    for side in order:
                        base_url, process = sides[side]
                        before = tree_cpu_seconds(process.pid)
                        outcome = await drive(
                            base_url,
                            token,
                            width,
                            BATCH,
                            cycle=cycle,
                            name=f"events-{mode}-{side}-{round_}",
                        )
                        used = tree_cpu_seconds(process.pid) - before
                        best[side] = max(best[side], outcome.jobs_per_s)
                        cpu_ms[side] = min(cpu_ms[side], 1000 * used / outcome.jobs)
                cost = 100 * (1 - best["on"] / best["off"])
                cpu_cost = 100 * (cpu_ms["on"] / cpu_ms["off"] - 1)
                report.row(
                    backend,
                    SCENARIO,
                    f"pipeline {mode}, events on vs off",
                    f"{best['on']:,.0f} vs {best['off']:,.0f} jobs/s: the log costs "
                    f"{cost:.1f}% of throughput; server CPU {cpu_ms['on']:.2f} vs "
                    f"{cpu_ms['off']:.2f} ms/job ({cpu_cost:+.1f}%); best of {rounds} "
                    f"alternating runs of {2 * width + 1:,} jobs",
                )
                report.figure(backend, f"events.{mode}_on_jobs_per_s", best["on"], "jobs/s")
                report.figure(backend, f"events.{mode}_off_jobs_per_s", best["off"], "jobs/s")
                report.figure(backend, f"events.{mode}_cost_pct", cost, "%")
                report.figure(backend, f"events.{mode}_cpu_cost_pct", cpu_cost, "%")
