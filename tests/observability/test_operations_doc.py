"""docs/operations.md lists every metric runql exports, with its labels, and nothing it
does not."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from runql.observe.metrics import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_metric_is_documented_with_its_labels() -> None:
    declared = [m for m in vars(Metrics()).values() if isinstance(m, MetricWrapperBase)]
    exported = {
        (f"{m._name}_total" if m._type == "counter" else m._name): set(m._labelnames)
        for m in declared
    }
    rows = {
        match.group(1): set(re.findall(r"`(\w+)`", match.group(2)))
        for match in re.finditer(r"^\| `(runql_\w+)` \| [^|]+ \|([^|]*)\|", DOC.read_text(), re.M)
    }

    assert len(exported) == 18
    assert rows == exported
