"""Metrics and tracing for operators: the Prometheus exposition (`prometheus`, the
`web` extra) and the worker's own metrics endpoint (`server`). The spans themselves are
made by `brains_jobs.tracing` (the `otel` extra).
"""
