"""Helpers for tests: a gateway on a real port with in-memory telemetry."""
