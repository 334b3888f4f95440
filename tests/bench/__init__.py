"""Tests of the benchmark suite's own parts (not timed)."""
