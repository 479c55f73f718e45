"""Observability: structured JSON logs, Prometheus metrics, OpenTelemetry traces."""
