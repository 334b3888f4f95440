"""OpenTelemetry wiring: setup from OTEL_* variables, instruments, per-call recording."""
