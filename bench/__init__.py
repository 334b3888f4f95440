"""Benchmark suite: the gateway against the bare proxy floor; see bench/README.md."""
