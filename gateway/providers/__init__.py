"""Upstream clients, one per API family, behind the `Provider` interface."""
