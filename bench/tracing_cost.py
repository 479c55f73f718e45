"""Scenario 9: what OpenTelemetry costs the runs page: nothing when tracing is off.

Three cases, each in a fresh Python process on the bench's seeded database, so the only
difference between them is what that process can import and is told:

* ``without the extra``: ``opentelemetry`` cannot be imported (an import hook refuses
  it), as on an install without ``runql[otel]``;
* ``extra, tracing off``: the extra is installed and no ``OTEL_*`` variable asks for
  traces (the default); the process checks afterwards that not one OpenTelemetry module
  was imported;
* ``tracing on``: a tracer provider with a batch processor and an exporter that drops
  the spans (the cost of making them, not of shipping them).

Each process times the runs page (``bench.runs_page.RUNS_PAGE``) through the app as the
other scenarios do, and hands back its samples and its last answer, which is checked
against the seeded data. The cases run in turns, twice, to spread machine noise over all
three. The figure to watch: ``tracing.off_over_without_extra`` (about 1.0).

Run as a module (``python -m bench.tracing_cost URL TOKEN MODE REPEATS WARMUP``) it is
the measuring process.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.env import BenchEnv, Config
from bench.report import Report
from bench.runs_page import RUNS_PAGE, check_page
from bench.seed import Seeded
from bench.timing import Timing

SCENARIO = "9 tracing cost"
CASES = (
    ("without", "without the extra"),
    ("off", "extra, tracing off"),
    ("on", "tracing on"),
)
ROUNDS = 2
ROOT = Path(__file__).resolve().parent.parent


async def measure_tracing_cost(
    env: BenchEnv, seeded: Seeded, config: Config, report: Report
) -> None:
    """The runs page at the current depth in each case; see the module docstring."""
    samples: dict[str, list[float]] = {mode: [] for mode, _ in CASES}
    last: dict[str, dict[str, Any]] = {}
    for _ in range(ROUNDS):
        for mode, _case in CASES:
            measured = await _measure_in_process(env.url, seeded.member.token, mode, config)
            samples[mode] += measured["samples_ms"]
            last[mode] = measured
    for mode, case in CASES:
        check_page(last[mode]["result"], seeded)
        timing = Timing(samples[mode], last[mode]["statements"], 0, None)
        report.timing(env.backend, SCENARIO, case, timing, key=f"tracing.{mode}")
    for name, numerator in (("off_over_without_extra", "off"), ("on_over_off", "on")):
        denominator = "without" if numerator == "off" else "off"
        ratio = report.ratio(env.backend, f"tracing.{numerator}", f"tracing.{denominator}")
        report.figure(env.backend, f"tracing.{name}", ratio, "x")


async def _measure_in_process(url: str, token: str, mode: str, config: Config) -> Any:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    args = (url, token, mode, str(config.repeats), str(config.warmup))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.tracing_cost",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"tracing cost ({mode}) failed:\n{err.decode(errors='replace')}")
    return json.loads(out)


# --- the measuring process ---------------------------------------------------------------


class _NoOpenTelemetry(importlib.abc.MetaPathFinder):
    """Refuses every ``opentelemetry`` import, as if the extra were not installed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _tracer_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    return provider


async def _measure(url: str, token: str, mode: str, repeats: int, warmup: int) -> dict[str, Any]:
    import httpx

    from bench.timing import measure
    from runql.db.engine import Database
    from runql.observe import tracing
    from runql.settings import Settings
    from runql.web.app import create_app

    if mode == "without" and tracing.available():
        raise RuntimeError("opentelemetry is still importable")
    settings = Settings(
        database_url=url, secret_key="bench-secret", statement_timeout_ms=0, log_level="WARNING"
    )
    db = Database(url, statement_timeout_ms=0)
    provider = _tracer_provider() if mode == "on" else None
    app = create_app(settings, db=db, tracer_provider=provider)
    headers = {"authorization": f"Bearer {token}"}

    async def page() -> list[dict[str, Any]]:
        response = await client.post("/graphql", json={"query": RUNS_PAGE}, headers=headers)
        payload = response.json()
        if payload.get("errors") or response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {payload.get('errors')}")
        return [edge["node"] for edge in payload["data"]["runs"]["edges"]]

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runql.bench") as client:
            timing = await measure(page, repeats=repeats, warmup=warmup)
    finally:
        await db.dispose()
    if mode != "on":
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        if loaded:
            raise RuntimeError(f"tracing off, yet OpenTelemetry was imported: {loaded}")
    return {
        "samples_ms": timing.samples_ms,
        "statements": timing.statements,
        "result": timing.result,
    }


def main(argv: list[str]) -> None:
    url, token, mode, repeats, warmup = argv
    if mode == "without":
        sys.meta_path.insert(0, _NoOpenTelemetry())
    result = asyncio.run(_measure(url, token, mode, int(repeats), int(warmup)))
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
