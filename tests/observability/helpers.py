"""Reading ``/metrics`` the way Prometheus does: with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of an exposition: ``(sample name, labels) -> value``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def values(samples: dict[tuple[str, Labels], float], name: str) -> dict[Labels, float]:
    """The samples called ``name`` by their labels, zeros left out."""
    return {
        labels: value for (sample, labels), value in samples.items() if sample == name and value
    }


def labels(**pairs: str) -> Labels:
    return frozenset(pairs.items())


def families(text: str) -> set[str]:
    """The metric families an exposition declares (names without ``_total`` etc.)."""
    return {family.name for family in text_string_to_metric_families(text)}
